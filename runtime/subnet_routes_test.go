package runtime

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPickSubnetFromPool(t *testing.T) {
	tests := []struct {
		name  string
		pool  string
		bits  int
		taken []string
		want  string
		err   bool
	}{
		{name: "empty host", pool: "172.20.0.0/14", bits: 24, want: "172.20.0.0/24"},
		{name: "skips taken /24s", pool: "172.20.0.0/14", bits: 24, taken: []string{"172.20.0.0/24", "172.20.1.0/24"}, want: "172.20.2.0/24"},
		{name: "skips a wider route", pool: "172.20.0.0/14", bits: 24, taken: []string{"172.20.0.0/16"}, want: "172.21.0.0/24"},
		{name: "skips a narrower address", pool: "172.20.0.0/14", bits: 24, taken: []string{"172.20.0.5/32"}, want: "172.20.1.0/24"},
		{name: "ignores the other family", pool: "172.20.0.0/14", bits: 24, taken: []string{"fd00::/8"}, want: "172.20.0.0/24"},
		{name: "pool exhausted", pool: "10.0.0.0/23", bits: 24, taken: []string{"10.0.0.0/16"}, err: true},
		{name: "size larger than pool", pool: "10.0.0.0/24", bits: 16, err: true},
		{name: "ipv6", pool: "fd6b:696e:6300::/48", bits: 64, taken: []string{"fd6b:696e:6300::/64"}, want: "fd6b:696e:6300:1::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var taken []netip.Prefix
			for _, s := range tt.taken {
				taken = append(taken, netip.MustParsePrefix(s))
			}
			got, err := PickSubnet(netip.MustParsePrefix(tt.pool), tt.bits, taken)
			if tt.err {
				if err == nil {
					t.Fatalf("PickSubnet = %s, want an error", got)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("PickSubnet = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestParseRouteTables(t *testing.T) {
	v4 := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
docker0	000011AC	00000000	0001	0	0	0	0000FFFF	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
`
	got := parseRouteV4(strings.NewReader(v4))
	want := []string{"172.17.0.0/16", "192.0.2.0/24"} // the default route overlaps all: skipped
	if len(got) != len(want) {
		t.Fatalf("parseRouteV4 = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("route %d = %s, want %s", i, got[i], want[i])
		}
	}
	v6 := `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
`
	got = parseRouteV6(strings.NewReader(v6))
	if len(got) != 1 || got[0].String() != "fd00::/64" {
		t.Errorf("parseRouteV6 = %v, want [fd00::/64]", got)
	}
}
