package kubeadm

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func readBase(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "containerd", "base.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lookupTOML decodes a config and follows a path of table keys.
func lookupTOML(t *testing.T, text string, path ...string) any {
	t.Helper()
	var tree map[string]any
	if _, err := toml.Decode(text, &tree); err != nil {
		t.Fatalf("result is not TOML: %v\n%s", err, text)
	}
	var v any = tree
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func TestContainerdConfigUnpatched(t *testing.T) {
	base := readBase(t)
	got, err := ContainerdConfig(base, nil, nil)
	if err != nil || got != base {
		t.Fatalf("without patches the base must come back as it was; err %v", err)
	}
}

func TestContainerdConfig(t *testing.T) {
	const cri = `io.containerd.grpc.v1.cri`
	mirror := `[plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5000"]
  endpoint = ["http://kind-registry:5000"]
`
	for _, tc := range []struct {
		name     string
		base     string // testdata/containerd/base.toml if empty
		patches  []string
		json6902 []string
		path     []string
		want     any
	}{
		{
			name:    "new table is added",
			patches: []string{mirror},
			path:    []string{"plugins", cri, "registry", "mirrors", "localhost:5000", "endpoint"},
			want:    []any{"http://kind-registry:5000"},
		},
		{
			name:    "merge keeps siblings",
			patches: []string{mirror},
			path:    []string{"plugins", cri, "registry", "config_path"},
			want:    "/etc/containerd/certs.d",
		},
		{
			name:    "scalar replaced deep down",
			patches: []string{"[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\nSystemdCgroup = true\n"},
			path:    []string{"plugins", cri, "containerd", "runtimes", "runc", "options", "SystemdCgroup"},
			want:    true,
		},
		{
			name:    "later patch wins",
			patches: []string{"[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nsnapshotter = \"native\"\n", "[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nsnapshotter = \"fuse-overlayfs\"\n"},
			path:    []string{"plugins", cri, "containerd", "snapshotter"},
			want:    "fuse-overlayfs",
		},
		{
			name:    "array replaced, not appended",
			patches: []string{mirror, "[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"localhost:5000\"]\nendpoint = [\"http://b:5000\", \"http://c:5000\"]\n"},
			path:    []string{"plugins", cri, "registry", "mirrors", "localhost:5000", "endpoint"},
			want:    []any{"http://b:5000", "http://c:5000"},
		},
		{
			name:     "json6902 stays an integer",
			json6902: []string{`[{"op": "replace", "path": "/version", "value": 3}]`},
			path:     []string{"version"},
			want:     int64(3),
		},
		{
			name:     "json6902 in YAML after a merge patch",
			patches:  []string{mirror},
			json6902: []string{"- op: add\n  path: /plugins/io.containerd.grpc.v1.cri/registry/mirrors/localhost:5000/endpoint/-\n  value: http://fallback:5000\n"},
			path:     []string{"plugins", cri, "registry", "mirrors", "localhost:5000", "endpoint"},
			want:     []any{"http://kind-registry:5000", "http://fallback:5000"},
		},
		{
			name:     "json6902 remove",
			json6902: []string{`[{"op": "remove", "path": "/plugins/io.containerd.grpc.v1.cri/disable_hugetlb_controller"}]`},
			path:     []string{"plugins", cri, "disable_hugetlb_controller"},
			want:     nil,
		},
		{
			name:     "array of tables survives json6902",
			base:     "[[proxy_plugins.example.exports]]\n  name = \"a\"\n",
			json6902: []string{`[{"op": "add", "path": "/proxy_plugins/example/exports/-", "value": {"name": "b"}}]`},
			path:     []string{"proxy_plugins", "example", "exports"},
			want:     []map[string]any{{"name": "a"}, {"name": "b"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := tc.base
			if base == "" {
				base = readBase(t)
			}
			got, err := ContainerdConfig(base, tc.patches, tc.json6902)
			if err != nil {
				t.Fatal(err)
			}
			if v := lookupTOML(t, got, tc.path...); !reflect.DeepEqual(v, tc.want) {
				t.Errorf("%s = %#v, want %#v\n%s", strings.Join(tc.path, "."), v, tc.want, got)
			}
			again, _ := ContainerdConfig(base, tc.patches, tc.json6902)
			if again != got {
				t.Error("output is not stable between runs")
			}
		})
	}
}

func TestContainerdConfigGolden(t *testing.T) {
	got, err := ContainerdConfig(readBase(t),
		[]string{"[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"localhost:5000\"]\n  endpoint = [\"http://kind-registry:5000\"]\n"},
		[]string{`[{"op": "add", "path": "/plugins/io.containerd.grpc.v1.cri/enable_unprivileged_ports", "value": true}]`})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "containerd", "patched.golden"), got)
}

func TestContainerdConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, base string
		patches    []string
		json6902   []string
		want       string
	}{
		{name: "bad base", base: "version = ", patches: []string{"a = 1"}, want: "parsing containerd config"},
		{name: "bad patch", base: "version = 2", patches: []string{"[plugins"}, want: "containerdConfigPatches[0]"},
		{name: "bad json6902", base: "version = 2", json6902: []string{`{"op": "add"}`}, want: "containerdConfigPatchesJSON6902[0]"},
		{name: "json6902 on a missing path", base: "version = 2", json6902: []string{`[{"op": "replace", "path": "/nope/x", "value": 1}]`}, want: "containerdConfigPatchesJSON6902[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ContainerdConfig(tc.base, tc.patches, tc.json6902)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
