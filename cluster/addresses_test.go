package cluster

import (
	"strings"
	"testing"

	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/runtime"
)

func TestAssignAddresses(t *testing.T) {
	n := runtime.Network{Name: "kinc-c", Subnet: "10.89.0.0/24", Gateway: "10.89.0.1", SubnetV6: "fd00:89::/64"}
	got, err := assignAddresses(n, []string{"a", "b"}, []string{"10.89.0.3", "fd00:89::2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Addresses{"a": {"10.89.0.2", "fd00:89::3"}, "b": {"10.89.0.4", "fd00:89::4"}}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
	if a := got["a"]; a.NodeIP(config.DualStack) != "10.89.0.2,fd00:89::3" || a.NodeIP(config.IPv6Family) != "fd00:89::3" || a.Primary(config.IPv4Family) != "10.89.0.2" {
		t.Errorf("family views of %+v are wrong", a)
	}
	v4only, err := assignAddresses(runtime.Network{Name: "x", Subnet: "10.0.0.0/30"}, []string{"a"}, nil)
	if err != nil || v4only["a"] != (Addresses{IPv4: "10.0.0.2"}) {
		t.Errorf("v4-only network: %+v, %v", v4only, err)
	}
	if _, err := assignAddresses(runtime.Network{Name: "x", Subnet: "10.0.0.0/30"}, []string{"a", "b", "c"}, nil); err == nil || !strings.Contains(err.Error(), "no room") {
		t.Errorf("a full subnet: %v", err)
	}
	if _, err := assignAddresses(runtime.Network{Name: "x"}, []string{"a"}, nil); err == nil || !strings.Contains(err.Error(), "IPv4 subnet") {
		t.Errorf("no subnet: %v", err)
	}
}

func TestHostSupports(t *testing.T) {
	yes, no := func() bool { return true }, func() bool { return false }
	for _, tc := range []struct {
		n    config.Networking
		k    kernel
		want string // in the error; empty for none
	}{
		{config.Networking{IPFamily: config.IPv4Family, KubeProxyMode: config.IPTablesProxyMode}, kernel{no, no}, ""},
		{config.Networking{IPFamily: config.DualStack}, kernel{yes, no}, ""},
		{config.Networking{IPFamily: config.IPv6Family}, kernel{no, yes}, "disable_ipv6"},
		{config.Networking{IPFamily: config.DualStack}, kernel{no, yes}, "use ipFamily ipv4"},
		{config.Networking{IPFamily: config.IPv4Family, KubeProxyMode: config.IPVSProxyMode}, kernel{yes, no}, "modprobe"},
		{config.Networking{IPFamily: config.IPv4Family, KubeProxyMode: config.IPVSProxyMode}, kernel{yes, yes}, ""},
	} {
		err := hostSupports(tc.n, tc.k)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.n, err, tc.want)
		}
	}
}
