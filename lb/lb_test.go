package lb

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/cluster/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func threeControlPlanes() []Backend {
	return []Backend{
		{Name: "kinc-control-plane", Address: "kinc-control-plane"},
		{Name: "kinc-control-plane2", Address: "kinc-control-plane2"},
		{Name: "kinc-control-plane3", Address: "kinc-control-plane3", Port: 6443},
	}
}

var goldenCases = []struct {
	name string
	in   Input
}{
	{"names", Input{Backends: threeControlPlanes()}},
	{"dual-addresses", Input{BindPort: 7443, IPFamily: config.DualStack, Backends: []Backend{
		{Name: "dev-control-plane", Address: "10.89.0.3"},
		{Name: "dev-control-plane2", Address: "fc00:f853:ccd:e793::4", Port: 6444},
	}}},
	{"ipv6", Input{IPFamily: config.IPv6Family, Backends: threeControlPlanes()}},
}

func TestConfigGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Config(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./lb -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("differs from %s (go test ./lb -update rewrites it):\n%s", path, got)
			}
		})
	}
}

func TestConfigContent(t *testing.T) {
	got, err := Config(Input{IPFamily: config.DualStack, Backends: threeControlPlanes()})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"bind *:6443\n",
		"bind :::6443 v6only\n",
		"balance roundrobin\n",
		"option httpchk GET /healthz\n",
		"init-addr last,libc,none",
		"check check-ssl verify none inter 2s",
		"  server kinc-control-plane kinc-control-plane:6443\n",
		"  server kinc-control-plane2 kinc-control-plane2:6443\n",
		"  server kinc-control-plane3 kinc-control-plane3:6443\n",
		"log stdout",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	v4, _ := Config(Input{Backends: threeControlPlanes()})
	if strings.Contains(v4, ":::") {
		t.Errorf("an IPv4 cluster's load balancer listens on IPv6:\n%s", v4)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Input
		want string
	}{
		{"no backends", Input{}, "no control planes"},
		{"bad name", Input{Backends: []Backend{{Name: "a b", Address: "a"}}}, `server name "a b"`},
		{"no address", Input{Backends: []Backend{{Name: "a"}}}, `bad address ""`},
		{"twice", Input{Backends: []Backend{{Name: "a", Address: "a"}, {Name: "a", Address: "b"}}}, "named twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Config(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	if got := strings.Join(ReloadCommand(), " "); got != "systemctl reload haproxy.service" {
		t.Errorf("ReloadCommand = %q", got)
	}
	if got := StartCommand(); got[len(got)-1] != "systemctl daemon-reload && systemctl enable --now haproxy.service" {
		t.Errorf("StartCommand = %q", got)
	}
	if !strings.Contains(DropIn, "CONFIG="+ConfigPath) {
		t.Errorf("the drop-in does not point haproxy at %s:\n%s", ConfigPath, DropIn)
	}
}

// TestHaproxyAccepts has the real haproxy check every golden config. It
// needs haproxy on the host (apt-get install haproxy), as the load
// balancer's image has it.
func TestHaproxyAccepts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs haproxy")
	}
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (apt-get install haproxy)")
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Config(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "haproxy.cfg")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, haproxy, "-c", "-f", path).CombinedOutput()
			if err != nil {
				t.Fatalf("haproxy -c: %v\n%s", err, out)
			}
			// Names the host cannot resolve are expected (init-addr none
			// starts those servers disabled); anything else is a fault.
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "[WARNING]") && !strings.Contains(line, "could not resolve address") {
					t.Errorf("haproxy warns: %s", line)
				}
			}
		})
	}
}
