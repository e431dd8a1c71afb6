package cli

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/cluster"
	"github.com/kinc-dev/kinc/cluster/kubeconfig"
	"github.com/kinc-dev/kinc/runtime"
)

// logger writes step details to stderr at -v 1 and up; silent otherwise.
func logger(e *env) *slog.Logger {
	if e.verbosity <= 0 {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	level := slog.LevelInfo
	if e.verbosity > 1 {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// createCluster is `kinc create cluster` without --dry-run.
func createCluster(e *env, c *cli.Context) error {
	cfg, err := loadConfig(e, c)
	if err != nil {
		return err
	}
	rt, err := openRuntime(c.Context, e)
	if err != nil {
		return err
	}
	defer rt.Close()
	if !e.quiet {
		fmt.Fprintf(e.stderr, "Creating cluster %q ...\n", cfg.Name)
	}
	path := kubeconfigPath(e, c)
	err = cluster.Create(c.Context, rt, cfg,
		cluster.WithProgress(newStatus(e)),
		cluster.WithLogger(logger(e)),
		cluster.WithRetain(c.Bool("retain")),
		cluster.WithWait(c.Duration("wait")),
		cluster.WithKubeconfig(path),
		cluster.WithFallbackVersion(defaultKubernetesVersion),
	)
	if err != nil {
		return err
	}
	if !e.quiet {
		ctx := kubeconfig.ContextName(cfg.Name)
		fmt.Fprintf(e.stdout, "Set kubectl context to %q in %s\nYou can now use your cluster with:\n\nkubectl cluster-info --context %s\n", ctx, path, ctx)
	}
	return nil
}

func deleteCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "delete",
		Usage: "delete clusters or nodes",
		Subcommands: []*cli.Command{
			{
				Name:  "cluster",
				Usage: "delete a cluster: its containers, volumes, network and kubeconfig entry",
				Flags: []cli.Flag{nameFlag, kubeconfigFlag},
				Action: func(c *cli.Context) error {
					return deleteClusters(e, c, []string{clusterName(e, c)})
				},
			},
			{
				Name:      "clusters",
				Usage:     "delete the named clusters, or all of them",
				ArgsUsage: "NAME... | --all",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"A"}, Usage: "delete every kinc cluster"}, kubeconfigFlag},
				Action: func(c *cli.Context) error {
					names := c.Args().Slice()
					if c.Bool("all") == (len(names) > 0) {
						return cli.Exit("name the clusters to delete, or pass --all (not both)", 2)
					}
					return deleteClusters(e, c, names)
				},
			},
			deleteNodeCommand(e),
		},
	}
}

func deleteClusters(e *env, c *cli.Context, names []string) error {
	rt, err := openRuntime(c.Context, e)
	if err != nil {
		return err
	}
	defer rt.Close()
	if c.Bool("all") {
		if names, err = cluster.List(c.Context, rt); err != nil {
			return err
		}
	}
	path := kubeconfigPath(e, c)
	for _, name := range names {
		if !e.quiet {
			fmt.Fprintf(e.stderr, "Deleting cluster %q ...\n", name)
		}
		if err := cluster.Delete(c.Context, rt, name, path); err != nil {
			return err
		}
	}
	return nil
}

func getCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "get",
		Usage: "get clusters, nodes or a kubeconfig",
		Subcommands: []*cli.Command{
			{
				Name:  "clusters",
				Usage: "list the clusters",
				Action: func(c *cli.Context) error {
					rt, err := openRuntime(c.Context, e)
					if err != nil {
						return err
					}
					defer rt.Close()
					names, err := cluster.List(c.Context, rt)
					if err != nil {
						return err
					}
					if len(names) == 0 {
						fmt.Fprintln(e.stderr, "No kinc clusters found.")
					}
					for _, n := range names {
						fmt.Fprintln(e.stdout, n)
					}
					return nil
				},
			},
			{
				Name:  "nodes",
				Usage: "list a cluster's node containers",
				Flags: []cli.Flag{nameFlag,
					&cli.BoolFlag{Name: "all-clusters", Aliases: []string{"A"}, Usage: "nodes of every cluster"},
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "wide: add role, state, address and ports"}},
				Action: func(c *cli.Context) error { return getNodes(e, c) },
			},
			{
				Name:  "kubeconfig",
				Usage: "print a cluster's kubeconfig",
				Flags: []cli.Flag{nameFlag, internalFlag},
				Action: func(c *cli.Context) error {
					text, err := clusterKubeconfig(e, c)
					if err != nil {
						return err
					}
					_, err = e.stdout.Write(text)
					return err
				},
			},
		},
	}
}

var internalFlag = &cli.BoolFlag{Name: "internal", Usage: "use the control plane's address on the cluster network, for use from other containers"}

func getNodes(e *env, c *cli.Context) error {
	rt, err := openRuntime(c.Context, e)
	if err != nil {
		return err
	}
	defer rt.Close()
	names := []string{clusterName(e, c)}
	if c.Bool("all-clusters") {
		if names, err = cluster.List(c.Context, rt); err != nil {
			return err
		}
	}
	wide := c.String("output") == "wide"
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if wide {
		fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tADDRESS\tPORTS")
	}
	found := 0
	for _, name := range names {
		nodes, err := cluster.Nodes(c.Context, rt, name)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			found++
			if !wide {
				fmt.Fprintln(tw, n.Name)
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, n.Labels[runtime.LabelRole], n.State, n.IPv4, portList(n.Ports))
		}
	}
	if found == 0 {
		fmt.Fprintf(e.stderr, "No kinc nodes found for cluster %q.\n", strings.Join(names, ", "))
	}
	return tw.Flush()
}

func portList(ps []runtime.PortMapping) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", p.ListenAddress, p.HostPort, p.ContainerPort, p.Protocol))
	}
	return strings.Join(out, ",")
}

// clusterKubeconfig reads admin.conf from the cluster and points it at the
// host port (or, with --internal, at the node on the cluster network).
func clusterKubeconfig(e *env, c *cli.Context) ([]byte, error) {
	rt, err := openRuntime(c.Context, e)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	return cluster.Kubeconfig(c.Context, rt, clusterName(e, c), c.Bool("internal"))
}

func exportCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "export",
		Usage: "export a cluster's kubeconfig or logs",
		Subcommands: []*cli.Command{{
			Name:  "kubeconfig",
			Usage: "merge a cluster's kubeconfig into --kubeconfig, $KUBECONFIG or ~/.kube/config",
			Flags: []cli.Flag{nameFlag, kubeconfigFlag, internalFlag},
			Action: func(c *cli.Context) error {
				rt, err := openRuntime(c.Context, e)
				if err != nil {
					return err
				}
				defer rt.Close()
				name := clusterName(e, c)
				path := kubeconfigPath(e, c)
				if err := cluster.ExportKubeconfig(c.Context, rt, name, path, c.Bool("internal")); err != nil {
					return err
				}
				if !e.quiet {
					fmt.Fprintf(e.stderr, "Set kubectl context to %q in %s\n", kubeconfig.ContextName(name), path)
				}
				return nil
			},
		}},
	}
}
