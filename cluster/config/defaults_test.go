package config

import (
	"testing"
)

func TestClusterName(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvClusterName {
				return v
			}
			return ""
		}
	}
	const named = "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: from-config\n"
	const unnamed = "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\n"
	tests := []struct {
		name, data string
		opts       []Option
		want       string
	}{
		{"flag wins over all", named, []Option{WithName("from-flag"), WithEnv(env("from-env"))}, "from-flag"},
		{"config over env", named, []Option{WithEnv(env("from-env"))}, "from-config"},
		{"env when no config name", unnamed, []Option{WithEnv(env("from-env"))}, "from-env"},
		{"empty env ignored", unnamed, []Option{WithEnv(env(""))}, "kinc"},
		{"env not read without WithEnv", unnamed, nil, "kinc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("c.yaml", []byte(tt.data), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tt.want {
				t.Errorf("name = %q, want %q", c.Name, tt.want)
			}
		})
	}
}

// A bad name from the flag is not blamed on the config's line.
func TestBadFlagNameHasNoLine(t *testing.T) {
	_, err := Parse("c.yaml", []byte("apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: fine\n"), WithName("Not_Fine"))
	want := `c.yaml: name: "Not_Fine" is not a valid cluster name`
	if err == nil || err.Error()[:len(want)] != want {
		t.Errorf("error = %v, want prefix %q", err, want)
	}
}

func TestImages(t *testing.T) {
	const data = "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnodes:\n- image: own:1\n- role: worker\n"
	tests := []struct {
		name string
		opts []Option
		want [2]string
	}{
		{"none", nil, [2]string{"own:1", ""}},
		{"default fills empty", []Option{WithDefaultImage("def:2")}, [2]string{"own:1", "def:2"}},
		{"image overrides all", []Option{WithDefaultImage("def:2"), WithImage("flag:3")}, [2]string{"flag:3", "flag:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("c.yaml", []byte(data), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := [2]string{c.Nodes[0].Image, c.Nodes[1].Image}; got != tt.want {
				t.Errorf("images = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaultNetworking(t *testing.T) {
	tests := []struct {
		family                  IPFamily
		addr, pod, svc, listenA string
	}{
		{"", "127.0.0.1", "10.244.0.0/16", "10.96.0.0/16", "0.0.0.0"},
		{IPv6Family, "127.0.0.1", "fd00:10:244::/56", "fd00:10:96::/112", "0.0.0.0"},
		{DualStack, "127.0.0.1", "10.244.0.0/16,fd00:10:244::/56", "10.96.0.0/16,fd00:10:96::/112", "0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(string(tt.family), func(t *testing.T) {
			c := &Cluster{
				Networking: Networking{IPFamily: tt.family, APIServerPort: -1},
				Nodes: []Node{{ExtraMounts: []Mount{{HostPath: "/a", ContainerPath: "/b"}},
					ExtraPortMappings: []PortMapping{{ContainerPort: 80, HostPort: -1}}}},
			}
			if err := SetDefaults(c); err != nil {
				t.Fatal(err)
			}
			n := c.Networking
			if n.APIServerAddress != tt.addr || n.PodSubnet != tt.pod || n.ServiceSubnet != tt.svc {
				t.Errorf("networking = %+v, want address %s, pods %s, services %s", n, tt.addr, tt.pod, tt.svc)
			}
			if n.APIServerPort != 0 || n.KubeProxyMode != IPTablesProxyMode {
				t.Errorf("apiServerPort %d (want -1 turned to 0), kubeProxyMode %q", n.APIServerPort, n.KubeProxyMode)
			}
			node := c.Nodes[0]
			pm := node.ExtraPortMappings[0]
			if node.Role != ControlPlaneRole || pm.Protocol != PortProtocolTCP || pm.ListenAddress != tt.listenA || pm.HostPort != 0 {
				t.Errorf("node = %+v, want role control-plane, TCP on %s, hostPort 0", node, tt.listenA)
			}
			if node.ExtraMounts[0].Propagation != MountPropagationNone {
				t.Errorf("propagation = %q, want None", node.ExtraMounts[0].Propagation)
			}
			if err := Validate(c); err != nil {
				t.Errorf("defaults do not validate: %v", err)
			}
		})
	}
}

func TestDefaultOneControlPlane(t *testing.T) {
	c := &Cluster{}
	if err := SetDefaults(c); err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 1 || c.Nodes[0].Role != ControlPlaneRole || c.Name != DefaultClusterName {
		t.Errorf("SetDefaults(empty) = %+v, want one control plane named kinc", c)
	}
}
