package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/kinc-dev/kinc/cluster/kubeconfig"
	"github.com/kinc-dev/kinc/runtime"
)

// List returns the names of the clusters that have containers in rt.
func List(ctx context.Context, rt runtime.Runtime) ([]string, error) {
	nodes, err := rt.ListNodes(ctx, map[string]string{runtime.LabelCluster: ""})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	seen := map[string]bool{}
	var names []string
	for _, n := range nodes {
		if name := n.Labels[runtime.LabelCluster]; name != "" && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Nodes returns a cluster's containers (the load balancer included), by name.
func Nodes(ctx context.Context, rt runtime.Runtime, cluster string) ([]runtime.NodeStatus, error) {
	nodes, err := rt.ListNodes(ctx, map[string]string{runtime.LabelCluster: cluster})
	if err != nil {
		return nil, fmt.Errorf("listing nodes of cluster %q: %w", cluster, err)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes, nil
}

// Delete removes a cluster's containers (with their volumes), its network
// and, when kubeconfigPath is set, its kubeconfig entry. A cluster that
// does not exist is not an error: delete is idempotent, as kind's is.
func Delete(ctx context.Context, rt runtime.Runtime, cluster, kubeconfigPath string) error {
	nodes, err := Nodes(ctx, rt, cluster)
	if err != nil {
		return err
	}
	var errs []error
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	var mu sync.Mutex
	_ = forEach(ctx, names, func(ctx context.Context, name string) error {
		if err := rt.DeleteNode(ctx, name); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			mu.Lock()
			errs = append(errs, fmt.Errorf("deleting %s: %w", name, err))
			mu.Unlock()
		}
		return nil
	})
	if err := rt.DeleteNetwork(ctx, NetworkName(cluster)); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		errs = append(errs, fmt.Errorf("deleting network %s: %w", NetworkName(cluster), err))
	}
	if kubeconfigPath != "" {
		if err := kubeconfig.Remove(ctx, kubeconfigPath, cluster); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
