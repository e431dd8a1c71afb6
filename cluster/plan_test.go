package cluster

import (
	"strings"
	"testing"

	"github.com/kinc-dev/kinc/cluster/config"
)

func load(t *testing.T, yaml string) *config.Cluster {
	t.Helper()
	c, err := config.Parse("test.yaml", []byte(yaml), config.WithDefaultImage("kinc/node:v1.34.4"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const header = "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\n"

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name        string
		config      string
		nodes       string // name:role ...
		apiOn       string // the container publishing 6443
		initOn      string // the node whose config runs kubeadm init
		wantLB      bool
		wantVersion string
	}{
		{
			name:   "default",
			config: header,
			nodes:  "kinc-control-plane:control-plane", apiOn: "kinc-control-plane", initOn: "kinc-control-plane",
			wantVersion: "v1.34.4",
		},
		{
			name:   "worker listed first",
			config: header + "nodes:\n- role: worker\n- role: control-plane\n",
			nodes:  "kinc-worker:worker kinc-control-plane:control-plane", apiOn: "kinc-control-plane", initOn: "kinc-control-plane",
			wantVersion: "v1.34.4",
		},
		{
			name:   "ha",
			config: header + "name: ha\nnodes:\n- role: control-plane\n- role: control-plane\n- role: worker\n  image: other/node:v1.37.2\n",
			nodes:  "ha-control-plane:control-plane ha-control-plane2:control-plane ha-worker:worker", apiOn: "ha-external-load-balancer", initOn: "ha-control-plane",
			wantLB: true, wantVersion: "v1.34.4",
		},
		{
			name:   "version from image",
			config: header + "nodes:\n- role: control-plane\n  image: kindest/node:v1.31.0@sha256:0123\n",
			nodes:  "kinc-control-plane:control-plane", apiOn: "kinc-control-plane", initOn: "kinc-control-plane",
			wantVersion: "v1.31.0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(load(t, tc.config), "v1.34.4")
			if err != nil {
				t.Fatal(err)
			}
			if p.KubernetesVersion != tc.wantVersion {
				t.Errorf("version %s, want %s", p.KubernetesVersion, tc.wantVersion)
			}
			var got []string
			publishing := map[string]bool{}
			for _, n := range p.Nodes {
				got = append(got, n.Name+":"+string(n.Role))
				for _, pm := range n.Ports {
					if pm.ContainerPort == APIServerPort {
						publishing[n.Name] = true
					}
				}
				if strings.Contains(n.KubeadmConfig, "kind: InitConfiguration") != (n.Name == tc.initOn) {
					t.Errorf("node %s: InitConfiguration presence wrong", n.Name)
				}
			}
			if strings.Join(got, " ") != tc.nodes {
				t.Errorf("nodes %q, want %q", strings.Join(got, " "), tc.nodes)
			}
			if (p.LoadBalancer != nil) != tc.wantLB {
				t.Fatalf("load balancer %v, want %v", p.LoadBalancer != nil, tc.wantLB)
			}
			if p.LoadBalancer != nil {
				publishing[p.LoadBalancer.Name] = true
			}
			if len(publishing) != 1 || !publishing[tc.apiOn] {
				t.Errorf("API published on %v, want only %s", publishing, tc.apiOn)
			}
		})
	}
}

func TestPlanAddresses(t *testing.T) {
	c := load(t, header+"nodes:\n- role: control-plane\n- role: control-plane\n")
	p, err := NewPlan(c, "v1.34.4", WithAddresses(map[string]Addresses{"kinc-control-plane": {IPv4: "10.89.0.2"}, "kinc-control-plane2": {IPv4: "10.89.0.3"}}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.LoadBalancer.Config, "10.89.0.3:6443") {
		t.Errorf("load balancer does not use the node address:\n%s", p.LoadBalancer.Config)
	}
	if !strings.Contains(p.Nodes[1].KubeadmConfig, "10.89.0.3") {
		t.Errorf("kubeadm config of the second node lacks its address:\n%s", p.Nodes[1].KubeadmConfig)
	}
}
