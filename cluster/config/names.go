package config

import "strconv"

// ControlPlanes are the control-plane nodes, in config order.
func (c *Cluster) ControlPlanes() []Node { return c.byRole(ControlPlaneRole) }

// Workers are the worker nodes, in config order.
func (c *Cluster) Workers() []Node { return c.byRole(WorkerRole) }

func (c *Cluster) byRole(r NodeRole) []Node {
	var out []Node
	for _, n := range c.Nodes {
		if n.Role == r {
			out = append(out, n)
		}
	}
	return out
}

// NodeNames are the container names of c.Nodes, index for index, as kind
// names them: NAME-control-plane, NAME-control-plane2, ..., NAME-worker,
// NAME-worker2, ... numbered by role in config order.
func NodeNames(c *Cluster) []string {
	seen := map[NodeRole]int{}
	names := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		seen[n.Role]++
		names[i] = c.Name + "-" + string(n.Role)
		if k := seen[n.Role]; k > 1 {
			names[i] += strconv.Itoa(k)
		}
	}
	return names
}

// LoadBalancerName is the container name of the API server load balancer,
// which exists only when there is more than one control plane.
func LoadBalancerName(c *Cluster) string {
	return c.Name + "-external-load-balancer"
}
