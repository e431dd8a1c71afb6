package cli

import (
	"fmt"
	"io"
	goruntime "runtime"

	"github.com/urfave/cli/v2"
)

// Set at link time by the Makefile (-X github.com/kinc-dev/kinc/cli.version=...).
var (
	version = "v0.1.0-dev"
	commit  = "unknown"
)

func versionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print kinc's version, commit, Go version and default node image",
		Action: func(c *cli.Context) error {
			_, err := io.WriteString(e.stdout, versionText())
			return err
		},
	}
}

// versionText is what `kinc version` prints (and export logs keeps).
func versionText() string {
	return fmt.Sprintf("kinc %s commit %s %s %s/%s\ndefault node image: %s\n",
		version, commit, goruntime.Version(), goruntime.GOOS, goruntime.GOARCH, defaultNodeImage)
}
