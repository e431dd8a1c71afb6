package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/kinc-dev/kinc/cluster"
	"github.com/kinc-dev/kinc/cluster/config"
)

func createCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "create",
		Usage: "create a cluster, or a node in one",
		Subcommands: []*cli.Command{{
			Name:  "cluster",
			Usage: "create a local Kubernetes cluster (with --dry-run: print what would be created)",
			Flags: []cli.Flag{
				configNameFlag,
				&cli.StringFlag{Name: "config", Usage: "cluster config `FILE` (kind's format; - reads stdin)"},
				&cli.StringFlag{Name: "image", Usage: "node image `REF` for every node (overrides the config)"},
				&cli.BoolFlag{Name: "retain", Usage: "keep the nodes when create fails, for debugging"},
				&cli.DurationFlag{Name: "wait", Usage: "wait up to `DURATION` (e.g. 5m) for the nodes to be Ready"},
				kubeconfigFlag,
				&cli.BoolFlag{Name: "dry-run", Usage: "touch no runtime: print the resolved plan"},
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "yaml", Usage: "dry-run output format: yaml or json"},
			},
			Action: func(c *cli.Context) error {
				if !c.Bool("dry-run") {
					return createCluster(e, c)
				}
				cfg, err := loadConfig(e, c)
				if err != nil {
					return err
				}
				plan, err := cluster.NewPlan(cfg, defaultKubernetesVersion)
				if err != nil {
					return err
				}
				return printAs(e, c.String("output"), plan)
			},
		}, createNodeCommand(e)},
	}
}

// configNameFlag names the cluster create makes; its config may name it too.
var configNameFlag = &cli.StringFlag{Name: "name", Usage: "cluster `NAME` (default: the config's name, else $KINC_CLUSTER_NAME, else kinc)"}

// nameFlag picks the existing cluster a command acts on.
var nameFlag = &cli.StringFlag{Name: "name", Usage: "cluster `NAME` (default: $KINC_CLUSTER_NAME, else kinc)"}

// loadConfig reads --config (or the defaults) with --name and --image applied.
func loadConfig(e *env, c *cli.Context) (*config.Cluster, error) {
	opts := []config.Option{
		config.WithName(c.String("name")),
		config.WithStdin(e.stdin),
		config.WithEnv(e.getenv),
		config.WithDefaultImage(defaultNodeImage),
	}
	if img := c.String("image"); img != "" {
		opts = append(opts, config.WithImage(img))
	}
	return config.Load(c.String("config"), opts...)
}

// printAs writes v as YAML or JSON.
func printAs(e *env, format string, v any) error {
	var out []byte
	var err error
	switch format {
	case "yaml", "":
		out, err = toYAML(v)
	case "json":
		out, err = json.MarshalIndent(v, "", "  ")
		out = append(out, '\n')
	default:
		return cli.Exit(fmt.Sprintf("unknown output format %q: use -o yaml or -o json", format), 2)
	}
	if err != nil {
		return fmt.Errorf("encoding %s: %w", format, err)
	}
	_, err = e.stdout.Write(out)
	return err
}

// toYAML writes v as YAML with its fields in declaration order (JSON keeps
// it; a map-based YAML marshaller would sort them) and multi-line strings,
// such as kubeadm configs, as readable literal blocks.
func toYAML(v any) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	plainStyle(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// plainStyle drops the JSON quoting and flow style the tree was parsed with.
func plainStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.Contains(n.Value, "\n") {
		n.Style = yaml.LiteralStyle
	}
	for _, c := range n.Content {
		plainStyle(c)
	}
}
