package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/cluster"
)

func loadCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load images into a cluster's nodes",
		Subcommands: []*cli.Command{{
			Name:      "image-archive",
			Usage:     "import a docker-archive into every node (or --nodes), skipping nodes that have it",
			ArgsUsage: "FILE",
			Flags: []cli.Flag{nameFlag,
				&cli.StringFlag{Name: "nodes", Usage: "comma-separated node `NAMES` (default: every node)"}},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return cli.Exit("name one image archive: kinc load image-archive FILE", 2)
				}
				rt, err := openRuntime(c.Context, e)
				if err != nil {
					return err
				}
				defer rt.Close()
				var only []string
				if s := c.String("nodes"); s != "" {
					only = strings.Split(s, ",")
				}
				results, err := cluster.LoadArchive(c.Context, rt, clusterName(e, c), c.Args().First(), only)
				if err != nil {
					return err
				}
				for _, r := range results {
					if e.quiet {
						continue
					}
					if r.Skipped {
						fmt.Fprintf(e.stderr, "Image already present on node %s: skipped\n", r.Node)
					} else {
						fmt.Fprintf(e.stderr, "Image loaded on node %s\n", r.Node)
					}
				}
				return nil
			},
		}},
	}
}
