package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/cluster"
	"github.com/kinc-dev/kinc/runtime"
)

var nodesFlag = &cli.StringFlag{Name: "nodes", Usage: "comma-separated node `NAMES` (default: every node)"}

func loadCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load images into a cluster's nodes",
		Subcommands: []*cli.Command{
			{
				Name:      "image",
				Usage:     "load images from the runtime's own store into every node (or --nodes), skipping nodes that have them",
				ArgsUsage: "IMAGE...",
				Flags:     []cli.Flag{nameFlag, nodesFlag},
				Action: func(c *cli.Context) error {
					refs, err := positionalArgs(c)
					if err != nil {
						return err
					}
					if len(refs) == 0 {
						return cli.Exit("name at least one image: kinc load image IMAGE...", 2)
					}
					return load(e, c, func(ctx context.Context, rt runtime.Runtime, name string, only []string) ([]cluster.LoadResult, error) {
						return cluster.LoadImages(ctx, rt, name, refs, only)
					})
				},
			},
			{
				Name:      "image-archive",
				Usage:     "import a docker-archive into every node (or --nodes), skipping nodes that have it",
				ArgsUsage: "FILE",
				Flags:     []cli.Flag{nameFlag, nodesFlag},
				Action: func(c *cli.Context) error {
					files, err := positionalArgs(c)
					if err != nil {
						return err
					}
					if len(files) != 1 {
						return cli.Exit("name one image archive: kinc load image-archive FILE", 2)
					}
					return load(e, c, func(ctx context.Context, rt runtime.Runtime, name string, only []string) ([]cluster.LoadResult, error) {
						return cluster.LoadArchive(ctx, rt, name, files[0], only)
					})
				},
			},
		},
	}
}

// load opens the runtime, runs do on the cluster's nodes and reports, per
// node, whether the images were loaded or already there.
func load(e *env, c *cli.Context, do func(ctx context.Context, rt runtime.Runtime, name string, only []string) ([]cluster.LoadResult, error)) error {
	rt, err := openRuntime(c.Context, e)
	if err != nil {
		return err
	}
	defer rt.Close()
	results, err := do(c.Context, rt, clusterName(e, c), splitNodes(c.String("nodes")))
	if err != nil {
		return err
	}
	if !e.quiet {
		fmt.Fprint(e.stderr, loadReport(results))
	}
	return nil
}

// splitNodes reads --nodes: names separated by commas, blanks ignored.
func splitNodes(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func loadReport(results []cluster.LoadResult) string {
	var b strings.Builder
	for _, r := range results {
		if r.Skipped {
			fmt.Fprintf(&b, "Image already present on node %s: skipped\n", r.Node)
		} else {
			fmt.Fprintf(&b, "Image loaded on node %s\n", r.Node)
		}
	}
	return b.String()
}

// positionalArgs returns the command's arguments after applying the
// command's own flags found among them: urfave/cli stops parsing flags at
// the first argument, and `kinc load image IMG --name N` (kind's order)
// must work. A "--" ends the flags.
func positionalArgs(c *cli.Context) ([]string, error) {
	var out []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(out, args[i+1:]...), nil
		}
		if len(arg) < 2 || arg[0] != '-' {
			out = append(out, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		f := commandFlag(c.Command, name)
		if f == nil {
			return nil, cli.Exit(fmt.Sprintf("flag provided but not defined: %s (see --help)", arg), 2)
		}
		if _, isBool := f.(*cli.BoolFlag); isBool && !hasValue {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 == len(args) {
				return nil, cli.Exit(fmt.Sprintf("flag needs an argument: %s", arg), 2)
			}
			i++
			value = args[i]
		}
		if err := c.Set(name, value); err != nil {
			return nil, cli.Exit(fmt.Sprintf("invalid value %q for flag %s: %v", value, arg, err), 2)
		}
	}
	return out, nil
}

// commandFlag is the flag of cmd called name (or by an alias).
func commandFlag(cmd *cli.Command, name string) cli.Flag {
	if cmd == nil {
		return nil
	}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}
