package config

import (
	"fmt"
	"testing"
)

func TestNodeNames(t *testing.T) {
	c := &Cluster{Name: "dev", Nodes: []Node{
		{Role: ControlPlaneRole}, {Role: WorkerRole}, {Role: ControlPlaneRole},
		{Role: WorkerRole}, {Role: ControlPlaneRole}, {Role: WorkerRole},
	}}
	want := "[dev-control-plane dev-worker dev-control-plane2 dev-worker2 dev-control-plane3 dev-worker3]"
	if got := fmt.Sprint(NodeNames(c)); got != want {
		t.Errorf("NodeNames = %s, want %s", got, want)
	}
	if got := LoadBalancerName(c); got != "dev-external-load-balancer" {
		t.Errorf("LoadBalancerName = %s", got)
	}
	if cp, w := len(c.ControlPlanes()), len(c.Workers()); cp != 3 || w != 3 {
		t.Errorf("ControlPlanes, Workers = %d, %d; want 3, 3", cp, w)
	}
	// The longest valid name keeps every container name within 63.
	c.Name = fmt.Sprintf("%0*d", MaxNameLength, 0)
	if n := len(LoadBalancerName(c)); n != 63 {
		t.Errorf("load balancer name of the longest cluster name is %d long, want 63", n)
	}
}
