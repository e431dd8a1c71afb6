package gobuild

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds from the Go module proxy")
	}
	ctx := context.Background()
	cni, err := CNIPlugins("v1.9.1")
	if err != nil {
		t.Fatal(err)
	}
	etcd := Etcd("v3.6.5")
	for _, tc := range []struct {
		m    Module
		bin  string
		args []string
		want string
	}{
		{etcd[0], "etcd", []string{"--version"}, "etcd Version: 3.6.5"},
		{etcd[1], "etcdctl", []string{"version"}, "etcdctl version: 3.6.5"},
		{CoreDNS("v1.12.1"), "coredns", []string{"-version"}, "CoreDNS-1.12.1"},
		{Crictl("v1.37.0"), "crictl", []string{"--version"}, "crictl version v1.37.0"},
		{cni, "bridge", []string{}, "CNI bridge plugin v1.9.1"},
		{Flannel("v0.28.10"), "flanneld", []string{"--version"}, "v0.28.10"},
		{LocalPathProvisioner("v0.0.30"), "local-path-provisioner", []string{"--version"}, "v0.0.30"},
	} {
		t.Run(tc.bin, func(t *testing.T) {
			start := time.Now()
			bins, err := Build(ctx, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", tc.m.name(), time.Since(start).Round(time.Second))
			out, _ := exec.Command(bins[tc.bin], tc.args...).CombinedOutput()
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("%s %v printed %q, want %q", tc.bin, tc.args, out, tc.want)
			}
		})
	}
}

func TestCNIPluginsUnknown(t *testing.T) {
	if _, err := CNIPlugins("v1.9.1", "flannel"); err == nil || !strings.Contains(err.Error(), `unknown CNI plugin "flannel"`) {
		t.Errorf("err = %v", err)
	}
}

func TestCopyTrimmed(t *testing.T) {
	dir := t.TempDir()
	from := filepath.Join(dir, "main.go")
	os.WriteFile(from, []byte("package main\n\nimport (\n\t\"fmt\"\n\t_ \"example.com/x/udp\"\n)\n"), 0o644)
	to := filepath.Join(dir, "out", "main.go")
	if err := copyTrimmed(from, to, []string{`_ "example.com/x/udp"`}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(to)
	if want := "package main\n\nimport (\n\t\"fmt\"\n)\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	err := copyTrimmed(from, to, []string{`_ "example.com/x/tencentvpc"`})
	if err == nil || !strings.Contains(err.Error(), `no line "_ \"example.com/x/tencentvpc\"" to drop`) {
		t.Errorf("err = %v", err)
	}
}
