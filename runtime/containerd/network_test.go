package containerd

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/kinc-dev/kinc/runtime"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestPickIP(t *testing.T) {
	used := func(ss ...string) map[netip.Addr]bool {
		m := map[netip.Addr]bool{}
		for _, s := range ss {
			m[netip.MustParseAddr(s)] = true
		}
		return m
	}
	tests := []struct {
		name   string
		subnet string
		gw     string
		used   map[netip.Addr]bool
		want   string
	}{
		{name: "first after gateway", subnet: "172.20.0.0/24", gw: "172.20.0.1", want: "172.20.0.2"},
		{name: "fills a hole", subnet: "172.20.0.0/24", gw: "172.20.0.1", used: used("172.20.0.2", "172.20.0.4"), want: "172.20.0.3"},
		{name: "gateway elsewhere", subnet: "172.20.0.0/24", gw: "172.20.0.254", want: "172.20.0.1"},
		{name: "full", subnet: "10.0.0.0/30", gw: "10.0.0.1", used: used("10.0.0.2")},
		{name: "ipv6", subnet: "fd6b:696e:6300::/64", gw: "fd6b:696e:6300::1", used: used("fd6b:696e:6300::2"), want: "fd6b:696e:6300::3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pickIP(netip.MustParsePrefix(tt.subnet), netip.MustParseAddr(tt.gw), tt.used)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("pickIP = %s, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("pickIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBridgeName(t *testing.T) {
	a, b := bridgeName("kinc", "kind"), bridgeName("other", "kind")
	if a == b {
		t.Errorf("bridge names of two namespaces clash: %s", a)
	}
	if len(a) > 15 {
		t.Errorf("bridge name %q is longer than IFNAMSIZ-1", a)
	}
	if bridgeName("kinc", "kind") != a {
		t.Error("bridge name is not stable")
	}
}

func TestRenderConflist(t *testing.T) {
	tests := []struct {
		name string
		net  networkState
	}{
		{name: "ipv4", net: networkState{Name: "kind", CNIName: "kinc-kind", Bridge: "kinc-0a1b2c3d", Subnet: "172.20.0.0/24", Gateway: "172.20.0.1"}},
		{name: "dual-stack", net: networkState{Name: "kind", CNIName: "kinc-kind", Bridge: "kinc-0a1b2c3d", Subnet: "172.20.1.0/24", Gateway: "172.20.1.1", SubnetV6: "fd6b:696e:6300:1::/64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderConflist(tt.net)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "conflist-"+tt.name+".golden"), got)
			if _, err := libcni.ConfListFromBytes(got); err != nil {
				t.Errorf("libcni rejects the conflist: %v", err)
			}
		})
	}
	if _, err := renderConflist(networkState{Name: "bad", Subnet: "nope"}); err == nil {
		t.Error("renderConflist accepted a bad subnet")
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestChooseSubnet(t *testing.T) {
	kinc := prefixes(t, "10.200.1.0/24", "fd6b:696e:6300::/64")
	tests := []struct {
		name, asked string
		v4          bool
		want        string
		err         error
	}{
		{name: "asked", asked: "10.200.2.7/24", v4: true, want: "10.200.2.0/24"},
		{name: "overlaps a kinc network", asked: "10.200.0.0/16", v4: true, err: runtime.ErrAlreadyExists},
		{name: "not a subnet", asked: "10.200.2.0", v4: true, err: runtime.ErrInvalid},
		{name: "wrong family", asked: "fd00::/64", v4: true, err: runtime.ErrInvalid},
		{name: "picked v6", v4: false, want: "fd6b:696e:6300:1::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, bits := runtime.PoolV4, runtime.SubnetBitsV4
			if !tt.v4 {
				pool, bits = runtime.PoolV6, runtime.SubnetBitsV6
			}
			got, err := chooseSubnet(tt.asked, pool, bits, kinc, tt.v4)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("chooseSubnet(%q) = %s, %v; want %v", tt.asked, got, err, tt.err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("chooseSubnet(%q) = %s, %v; want %s", tt.asked, got, err, tt.want)
			}
		})
	}
}
