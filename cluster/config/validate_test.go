package config

import (
	"errors"
	"strings"
	"testing"
)

// Clusters built in code validate without a file; errors name the field.
func TestValidate(t *testing.T) {
	valid := func() *Cluster {
		c := &Cluster{Nodes: []Node{{Role: ControlPlaneRole}, {Role: WorkerRole}}}
		if err := SetDefaults(c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ports := func(pms ...PortMapping) func(*Cluster) {
		return func(c *Cluster) { c.Nodes[1].ExtraPortMappings = pms }
	}
	tests := []struct {
		name   string
		change func(*Cluster)
		want   string // "" for valid
	}{
		{"defaults", func(*Cluster) {}, ""},
		{"longest name", func(c *Cluster) { c.Name = strings.Repeat("a", MaxNameLength) }, ""},
		{"name one too long", func(c *Cluster) { c.Name = strings.Repeat("a", MaxNameLength+1) }, "name: "},
		{"name ends with dash", func(c *Cluster) { c.Name = "kinc-" }, "name: "},
		{"no nodes' control plane", func(c *Cluster) { c.Nodes[0].Role = WorkerRole }, "nodes: no control-plane node"},
		{"same port other protocol", ports(PortMapping{ContainerPort: 53, HostPort: 53, Protocol: PortProtocolTCP, ListenAddress: "0.0.0.0"},
			PortMapping{ContainerPort: 53, HostPort: 53, Protocol: PortProtocolUDP, ListenAddress: "0.0.0.0"}), ""},
		{"same port other address", ports(PortMapping{ContainerPort: 80, HostPort: 80, Protocol: PortProtocolTCP, ListenAddress: "127.0.0.1"},
			PortMapping{ContainerPort: 80, HostPort: 80, Protocol: PortProtocolTCP, ListenAddress: "127.0.0.2"}), ""},
		{"v6 wildcard takes v4", ports(PortMapping{ContainerPort: 80, HostPort: 80, Protocol: PortProtocolTCP, ListenAddress: "127.0.0.1"},
			PortMapping{ContainerPort: 81, HostPort: 80, Protocol: PortProtocolTCP, ListenAddress: "::"}), "nodes[1].extraPortMappings[1].hostPort: host port 80/TCP on :: is already used by nodes[1].extraPortMappings[0]"},
		{"v4 wildcard leaves v6", ports(PortMapping{ContainerPort: 80, HostPort: 80, Protocol: PortProtocolTCP, ListenAddress: "::1"},
			PortMapping{ContainerPort: 81, HostPort: 80, Protocol: PortProtocolTCP, ListenAddress: "0.0.0.0"}), ""},
		{"free ports never clash", ports(PortMapping{ContainerPort: 80, Protocol: PortProtocolTCP, ListenAddress: "0.0.0.0"},
			PortMapping{ContainerPort: 81, Protocol: PortProtocolTCP, ListenAddress: "0.0.0.0"}), ""},
		{"bad listen address", ports(PortMapping{ContainerPort: 80, Protocol: PortProtocolTCP, ListenAddress: "localhost"}), `nodes[1].extraPortMappings[0].listenAddress: "localhost" is not an IP address`},
		{"apiserver port clash on wildcard", func(c *Cluster) {
			c.Networking.APIServerPort = 6443
			c.Nodes[0].ExtraPortMappings = []PortMapping{{ContainerPort: 1, HostPort: 6443, Protocol: PortProtocolTCP, ListenAddress: "0.0.0.0"}}
		}, "networking.apiServerPort: port 6443 on 127.0.0.1 is also the hostPort of nodes[0].extraPortMappings[0]"},
		{"apiserver port out of range", func(c *Cluster) { c.Networking.APIServerPort = 65536 }, "networking.apiServerPort: 65536 is out of range"},
		{"bad apiserver address", func(c *Cluster) { c.Networking.APIServerAddress = "my-host" }, `networking.apiServerAddress: "my-host" is not an IP address`},
		{"dual stack", func(c *Cluster) {
			c.Networking.IPFamily = DualStack
			c.Networking.PodSubnet = "fd00:1::/56, 10.1.0.0/16"
			c.Networking.ServiceSubnet = "10.2.0.0/16,fd00:2::/112"
		}, ""},
		{"dual stack with two v4", func(c *Cluster) {
			c.Networking.IPFamily = DualStack
			c.Networking.PodSubnet = "10.1.0.0/16,10.3.0.0/16"
			c.Networking.ServiceSubnet = "10.2.0.0/16,fd00:2::/112"
		}, `networking.podSubnet: "10.1.0.0/16,10.3.0.0/16" does not match ipFamily dual`},
		{"v6 overlap", func(c *Cluster) {
			c.Networking.IPFamily = IPv6Family
			c.Networking.PodSubnet = "fd00::/48"
			c.Networking.ServiceSubnet = "fd00:0:0:1::/112"
		}, "networking.serviceSubnet: fd00:0:0:1::/112 overlaps podSubnet fd00::/48"},
		{"nftables and none", func(c *Cluster) { c.Networking.KubeProxyMode = NFTablesProxyMode }, ""},
		{"hostPath missing", func(c *Cluster) {
			c.Nodes[0].ExtraMounts = []Mount{{ContainerPath: "/a", Propagation: MountPropagationNone}}
		}, "nodes[0].extraMounts[0].hostPath: missing"},
		{"json6902 move without from", func(c *Cluster) {
			c.ContainerdConfigPatchesJSON6902 = []string{"[{op: move, path: /a}]"}
		}, "containerdConfigPatchesJSON6902[0]: operation 0 (move): no from"},
		{"json6902 without path", func(c *Cluster) {
			c.ContainerdConfigPatchesJSON6902 = []string{`[{"op": "remove"}]`}
		}, "containerdConfigPatchesJSON6902[0]: operation 0 (remove): no path"},
		{"json6902 empty", func(c *Cluster) { c.ContainerdConfigPatchesJSON6902 = []string{""} }, "containerdConfigPatchesJSON6902[0]: empty patch"},
		{"json6902 null value is a value", func(c *Cluster) {
			c.ContainerdConfigPatchesJSON6902 = []string{`[{"op": "add", "path": "/a", "value": null}]`}
		}, ""},
		{"merge patch a list", func(c *Cluster) { c.KubeadmConfigPatches = []string{"- a\n"} }, "kubeadmConfigPatches[0]: not a YAML mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(c)
			err := Validate(c)
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want prefix %q", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "" || ce.Line != 0 {
				t.Errorf("want an *Error without file or line, got %#v", ce)
			}
		})
	}
}
