package cluster

import (
	"context"
	"fmt"
	"net"

	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/cluster/kubeconfig"
	"github.com/kinc-dev/kinc/runtime"
)

// apiContainer is the container that serves a cluster's API to the host:
// the load balancer when there is one, else the first control plane.
func apiContainer(nodes []runtime.NodeStatus) (lbOrCP runtime.NodeStatus, controlPlane runtime.NodeStatus, err error) {
	var cp, lbn *runtime.NodeStatus
	for i := range nodes { // sorted by name: control-plane before control-plane2
		switch nodes[i].Labels[runtime.LabelRole] {
		case RoleLoadBalancer:
			lbn = &nodes[i]
		case string(config.ControlPlaneRole):
			if cp == nil {
				cp = &nodes[i]
			}
		}
	}
	if cp == nil {
		return runtime.NodeStatus{}, runtime.NodeStatus{}, fmt.Errorf("no control-plane container: %w", runtime.ErrNotFound)
	}
	if lbn != nil {
		return *lbn, *cp, nil
	}
	return *cp, *cp, nil
}

// hostServer is https://ADDRESS:PORT where the host reaches the API server
// published by st.
func hostServer(st runtime.NodeStatus) (string, error) {
	for _, p := range st.Ports {
		if p.ContainerPort == APIServerPort {
			host := p.ListenAddress
			switch host {
			case "", "0.0.0.0":
				host = "127.0.0.1"
			case "::":
				host = "::1"
			}
			return "https://" + net.JoinHostPort(host, fmt.Sprint(p.HostPort)), nil
		}
	}
	return "", fmt.Errorf("%s publishes no port for %d", st.Name, APIServerPort)
}

// kubeconfigEntry reads admin.conf from a control plane and points it at
// the host port, or with internal at the API container on the cluster
// network (for clients in other containers on that network).
func kubeconfigEntry(ctx context.Context, rt runtime.Runtime, name string, internal bool) (*kubeconfig.Entry, error) {
	nodes, err := Nodes(ctx, rt, name)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("cluster %q not found: %w (list clusters with `kinc get clusters`)", name, runtime.ErrNotFound)
	}
	api, cp, err := apiContainer(nodes)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", name, err)
	}
	server := fmt.Sprintf("https://%s:%d", api.Name, APIServerPort)
	if !internal {
		if server, err = hostServer(api); err != nil {
			return nil, err
		}
	}
	admin, err := node{rt, cp.Name}.readFile(ctx, adminConfPath)
	if err != nil {
		return nil, err
	}
	return kubeconfig.FromAdmin(admin, name, server)
}

// Kubeconfig returns a standalone kubeconfig for the cluster.
func Kubeconfig(ctx context.Context, rt runtime.Runtime, name string, internal bool) ([]byte, error) {
	e, err := kubeconfigEntry(ctx, rt, name, internal)
	if err != nil {
		return nil, err
	}
	return e.Bytes()
}

// ExportKubeconfig merges the cluster's kubeconfig into the file at path.
func ExportKubeconfig(ctx context.Context, rt runtime.Runtime, name, path string, internal bool) error {
	e, err := kubeconfigEntry(ctx, rt, name, internal)
	if err != nil {
		return err
	}
	return kubeconfig.Merge(ctx, path, e)
}
