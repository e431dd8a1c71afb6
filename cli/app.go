// Package cli is kinc's command line: it parses flags, calls the library
// packages and prints. It holds no cluster logic of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// env is what every command shares: the streams and the global flags,
// read once in Before.
type env struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	verbosity int
	quiet     bool
	runtime   string
	getenv    func(string) string
}

// Run runs kinc with args (args[0] is the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runApp(ctx, &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

func runApp(ctx context.Context, e *env, args []string) int {
	stderr := e.stderr
	if err := newApp(e).RunContext(ctx, args); err != nil {
		var coder cli.ExitCoder
		if errors.As(err, &coder) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(stderr, "ERROR:", msg)
			}
			return coder.ExitCode()
		}
		fmt.Fprintln(stderr, "ERROR:", err)
		return 1
	}
	return 0
}

func newApp(e *env) *cli.App {
	return &cli.App{
		Name:                 "kinc",
		Usage:                "Kubernetes IN Containers: local clusters on Podman, Docker or containerd",
		HideVersion:          true,
		EnableBashCompletion: true,
		Reader:               e.stdin,
		Writer:               e.stdout,
		ErrWriter:            e.stderr,
		// Errors are printed once, by Run.
		ExitErrHandler: func(*cli.Context, error) {},
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "verbosity", Aliases: []string{"v"}, Usage: "log detail: 0 is quiet steps, higher shows more", EnvVars: []string{"KINC_VERBOSITY"}},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"},
			&cli.StringFlag{Name: "runtime", Usage: "container runtime: podman, docker or containerd (default: the first one reachable)", EnvVars: []string{"KINC_RUNTIME"}},
		},
		Before: func(c *cli.Context) error {
			e.verbosity = c.Int("verbosity")
			e.quiet = c.Bool("quiet")
			e.runtime = c.String("runtime")
			switch e.runtime {
			case "", "podman", "docker", "containerd":
				return nil
			}
			return cli.Exit(fmt.Sprintf("unknown runtime %q: use --runtime podman, docker or containerd (or unset KINC_RUNTIME)", e.runtime), 2)
		},
		Commands: []*cli.Command{
			versionCommand(e),
			completionCommand(e),
			createCommand(e),
			deleteCommand(e),
			getCommand(e),
			withSubcommand(exportCommand(e), exportLogsCommand(e)),
			loadCommand(e),
			infoCommand(e),
			buildCommand(e),
		},
	}
}
