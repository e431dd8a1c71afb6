package cli

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/cluster/kubeconfig"
	"github.com/kinc-dev/kinc/runtime"
	// The backends register themselves with runtime.Detect.
	_ "github.com/kinc-dev/kinc/runtime/containerd"
	_ "github.com/kinc-dev/kinc/runtime/docker"
	_ "github.com/kinc-dev/kinc/runtime/podman"
)

// openRuntime connects to --runtime (or KINC_RUNTIME), else the first
// runtime that answers.
func openRuntime(ctx context.Context, e *env) (runtime.Runtime, error) {
	rt, err := runtime.Detect(ctx, e.runtime)
	if err != nil {
		return nil, cli.Exit(err.Error(), 1)
	}
	return rt, nil
}

var kubeconfigFlag = &cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` to write (default: the first file in $KUBECONFIG, else ~/.kube/config)"}

// kubeconfigPath resolves --kubeconfig, $KUBECONFIG and ~/.kube/config.
func kubeconfigPath(e *env, c *cli.Context) string {
	home, _ := os.UserHomeDir()
	return kubeconfig.Path(c.String("kubeconfig"), e.getenv, home)
}

// clusterName resolves --name, $KINC_CLUSTER_NAME and the default.
func clusterName(e *env, c *cli.Context) string {
	if n := c.String("name"); n != "" {
		return n
	}
	if n := e.getenv(config.EnvClusterName); n != "" {
		return n
	}
	return config.DefaultClusterName
}
