package containerd

import (
	"path/filepath"
	"testing"
)

func TestRenderHosts(t *testing.T) {
	self := hostEntry{IPv4: "172.20.0.3", Names: []string{"kind-worker", "kind-worker", "worker-alias"}}
	peers := []hostEntry{
		{IPv4: "172.20.0.4", IPv6: "fd6b:696e:6300::4", Names: []string{"kind-worker2", "kind-worker2"}},
		{IPv4: "172.20.0.2", Names: []string{"kind-control-plane", "kind-control-plane", "api"}},
		{IPv4: "172.20.0.9", Names: nil},
	}
	golden(t, filepath.Join("testdata", "hosts.golden"), renderHosts(self, peers))
}

func TestRenderResolvConf(t *testing.T) {
	tests := []struct {
		name, host, want string
	}{
		{
			name: "keeps remote nameservers, search and options",
			host: "# comment\nnameserver 10.255.255.53\nsearch example.com\noptions ndots:2 edns0\n",
			want: "nameserver 10.255.255.53\nsearch example.com\noptions ndots:2 edns0\n",
		},
		{
			name: "drops loopback resolvers",
			host: "nameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.53\nsortlist 1.2.3.4\n",
			want: "nameserver 192.0.2.53\n",
		},
		{
			name: "falls back when only loopback",
			host: "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
			want: "options edns0 trust-ad\nsearch .\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n",
		},
		{
			name: "empty host file",
			host: "",
			want: "nameserver 8.8.8.8\nnameserver 8.8.4.4\n",
		},
		{
			name: "zone index",
			host: "nameserver fe80::1%eth0\n",
			want: "nameserver fe80::1%eth0\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(renderResolvConf([]byte(tt.host))); got != tt.want {
				t.Errorf("renderResolvConf =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
