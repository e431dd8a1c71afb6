package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/cluster"
	"github.com/kinc-dev/kinc/cluster/config"
)

// createNodeCommand is `kinc create node`.
func createNodeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "node",
		Usage: "add a node to an existing cluster; a control plane joins its load balancer",
		Flags: []cli.Flag{
			nameFlag,
			&cli.StringFlag{Name: "role", Value: string(config.WorkerRole), Usage: "node `ROLE`: worker or control-plane"},
			&cli.StringFlag{Name: "image", Usage: "node image `REF` (default: the one the cluster's config gives the role)"},
			&cli.BoolFlag{Name: "retain", Usage: "keep the node when it fails to join, for debugging"},
			&cli.DurationFlag{Name: "wait", Usage: "wait up to `DURATION` (e.g. 3m) for the node to be Ready"},
		},
		Action: func(c *cli.Context) error {
			if args, err := positionalArgs(c); err != nil || len(args) > 0 {
				if err == nil {
					err = cli.Exit(fmt.Sprintf("create node takes no arguments (got %q): the name is chosen as create names nodes; pick the cluster with --name", args), 2)
				}
				return err
			}
			role := config.NodeRole(c.String("role"))
			if role != config.WorkerRole && role != config.ControlPlaneRole {
				return cli.Exit(fmt.Sprintf("unknown role %q: use --role worker or --role control-plane", role), 2)
			}
			rt, err := openRuntime(c.Context, e)
			if err != nil {
				return err
			}
			defer rt.Close()
			name := clusterName(e, c)
			if !e.quiet {
				fmt.Fprintf(e.stderr, "Adding a %s node to cluster %q ...\n", role, name)
			}
			node, err := cluster.AddNode(c.Context, rt, name, config.Node{Role: role, Image: c.String("image")},
				cluster.WithProgress(newStatus(e)),
				cluster.WithLogger(logger(e)),
				cluster.WithRetain(c.Bool("retain")),
				cluster.WithWait(c.Duration("wait")),
				cluster.WithFallbackVersion(defaultKubernetesVersion),
			)
			if err != nil {
				return err
			}
			// The name alone, for scripts.
			fmt.Fprintln(e.stdout, node)
			return nil
		},
	}
}

// deleteNodeCommand is `kinc delete node`.
func deleteNodeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "node",
		Aliases:   []string{"nodes"},
		Usage:     "remove nodes from a cluster (drained, reset, deleted from Kubernetes and the load balancer)",
		ArgsUsage: "NODE...",
		Flags:     []cli.Flag{nameFlag},
		Action: func(c *cli.Context) error {
			names, err := positionalArgs(c)
			if err != nil {
				return err
			}
			if len(names) == 0 {
				return cli.Exit("name the nodes to delete (`kinc get nodes` lists them)", 2)
			}
			rt, err := openRuntime(c.Context, e)
			if err != nil {
				return err
			}
			defer rt.Close()
			name := clusterName(e, c)
			if !e.quiet {
				fmt.Fprintf(e.stderr, "Deleting %d node(s) from cluster %q ...\n", len(names), name)
			}
			return cluster.RemoveNodes(c.Context, rt, name, names,
				cluster.WithProgress(newStatus(e)),
				cluster.WithLogger(logger(e)),
			)
		},
	}
}
