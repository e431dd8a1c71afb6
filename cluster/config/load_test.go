package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Every valid config loads, and loads to exactly its golden Cluster.
func TestLoadValidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/valid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	top, err := filepath.Glob("../../testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, top...)
	if len(files) < 10 {
		t.Fatalf("found only %d valid configs: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f, WithDefaultImage("kindest/node:test"))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", strings.TrimSuffix(filepath.Base(f), ".yaml")+".json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run go test -update to write it): %v", err)
			}
			if string(want) != string(got)+"\n" {
				t.Errorf("%s differs from golden %s:\n%s", f, golden, got)
			}
		})
	}
}

// Every invalid config fails with its error at the right file, line and
// field; wants are substrings of the error, each on a line of its own.
func TestLoadInvalid(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"invalid-unknown-field.yaml", []string{`invalid-unknown-field.yaml:5: nodez: unknown field; did you mean "nodes"? (accepted fields: apiVersion, kind, name, nodes,`}},
		{"invalid-typo-role.yaml", []string{`invalid-typo-role.yaml:7: nodes[1].rol: unknown field; did you mean "role"?`}},
		{"invalid-typo-nested.yaml", []string{`invalid-typo-nested.yaml:8: nodes[1].extraPortMappings[0].hostPrt: unknown field; did you mean "hostPort"? (accepted fields: containerPort, hostPort, listenAddress, protocol)`}},
		{"invalid-unknown-no-suggestion.yaml", []string{`invalid-unknown-no-suggestion.yaml:4: networking.flannel: unknown field (accepted fields: ipFamily,`}},
		{"invalid-wrong-type.yaml", []string{
			`invalid-wrong-type.yaml:4: networking.disableDefaultCNI: wrong type: want a boolean (true or false), got string "true"`,
			`invalid-wrong-type.yaml:5: networking.apiServerPort: wrong type: want an integer (32 bits), got string "high"`,
			`invalid-wrong-type.yaml:6: nodes: wrong type: want a list, got string "control-plane"`,
		}},
		{"invalid-bad-yaml.yaml", []string{`invalid-bad-yaml.yaml:5: invalid YAML: did not find expected ',' or ']'`}},
		{"invalid-apiversion.yaml", []string{`invalid-apiversion.yaml:1: apiVersion: "kind.sigs.k8s.io/v1alpha4" is not accepted; accepted: apiVersion: kind.x-k8s.io/v1alpha4 with kind: Cluster; apiVersion: kind.sigs.k8s.io/v1alpha3 with kind: Cluster; apiVersion: kind.sigs.k8s.io/v1alpha2 with kind: Config`}},
		{"invalid-kind.yaml", []string{`invalid-kind.yaml:2: kind: "Config" is not accepted with apiVersion kind.x-k8s.io/v1alpha4; accepted: apiVersion: kind.x-k8s.io/v1alpha4 with kind: Cluster`}},
		{"invalid-missing-apiversion.yaml", []string{`invalid-missing-apiversion.yaml:1: apiVersion: missing; accepted: apiVersion: kind.x-k8s.io/v1alpha4`}},
		{"invalid-duplicate-key.yaml", []string{`invalid-duplicate-key.yaml:4: name: duplicate key (first at line 3)`}},
		{"invalid-multi-document.yaml", []string{`invalid-multi-document.yaml:3: more than one YAML document`}},
		{"invalid-no-control-plane.yaml", []string{`invalid-no-control-plane.yaml:3: nodes: no control-plane node; add a node with role: control-plane`}},
		{"invalid-role.yaml", []string{`invalid-role.yaml:5: nodes[1].role: unknown role "master"; use "control-plane" or "worker"`}},
		{"invalid-name.yaml", []string{`invalid-name.yaml:3: name: "My_Cluster" is not a valid cluster name: use at most 40 lowercase letters, digits and '-'`}},
		{"invalid-name-too-long.yaml", []string{`invalid-name-too-long.yaml:3: name: "a-cluster-name-that-is-far-too-long-for-nodes" is not a valid cluster name`}},
		{"invalid-dup-hostport.yaml", []string{`invalid-dup-hostport.yaml:11: nodes[1].extraPortMappings[0].hostPort: host port 8080/TCP on 127.0.0.1 is already used by nodes[0].extraPortMappings[0] (line 6); pick another hostPort or listenAddress`}},
		{"invalid-apiserver-port-clash.yaml", []string{`invalid-apiserver-port-clash.yaml:4: networking.apiServerPort: port 6443 on 127.0.0.1 is also the hostPort of nodes[0].extraPortMappings[0] (line 8)`}},
		{"invalid-port-range.yaml", []string{
			`invalid-port-range.yaml:6: nodes[0].extraPortMappings[0].containerPort: 0 is out of range; use a port from 1 to 65535`,
			`invalid-port-range.yaml:7: nodes[0].extraPortMappings[0].hostPort: 70000 is out of range`,
			`invalid-port-range.yaml:8: nodes[0].extraPortMappings[0].protocol: unknown protocol "tcp"; use TCP, UDP or SCTP`,
		}},
		{"invalid-bad-subnet.yaml", []string{`invalid-bad-subnet.yaml:4: networking.podSubnet: "10.244.0.0/33" is not a CIDR`}},
		{"invalid-overlapping-subnets.yaml", []string{`invalid-overlapping-subnets.yaml:5: networking.serviceSubnet: 10.100.0.0/16 overlaps podSubnet 10.96.0.0/12`}},
		{"invalid-family-mismatch.yaml", []string{`invalid-family-mismatch.yaml:5: networking.podSubnet: "10.244.0.0/16" does not match ipFamily ipv6; give one IPv6 CIDR`}},
		{"invalid-dual-one-subnet.yaml", []string{`invalid-dual-one-subnet.yaml:5: networking.serviceSubnet: "10.96.0.0/16" does not match ipFamily dual; give one IPv4 and one IPv6 CIDR`}},
		{"invalid-ipfamily.yaml", []string{
			`invalid-ipfamily.yaml:4: networking.ipFamily: unknown ipFamily "ipv5"; use ipv4, ipv6 or dual`,
			`invalid-ipfamily.yaml:5: networking.kubeProxyMode: unknown kubeProxyMode "userspace"`,
		}},
		{"invalid-patch-yaml.yaml", []string{`invalid-patch-yaml.yaml:4: kubeadmConfigPatches[0]: not valid YAML (line 2 of the patch: did not find expected ',' or ']')`}},
		{"invalid-patch-no-kind.yaml", []string{`invalid-patch-no-kind.yaml:6: nodes[0].kubeadmConfigPatches[0]: no kind; say which kubeadm document this patches`}},
		{"invalid-json6902.yaml", []string{`invalid-json6902.yaml:7: kubeadmConfigPatchesJSON6902[0].patch: operation 0: unknown op "frobnicate"`}},
		{"invalid-json6902-target.yaml", []string{
			`invalid-json6902-target.yaml:4: kubeadmConfigPatchesJSON6902[0].version: missing`,
			`invalid-json6902-target.yaml:4: kubeadmConfigPatchesJSON6902[0].kind: missing`,
		}},
		{"invalid-json6902-not-list.yaml", []string{`invalid-json6902-not-list.yaml:7: kubeadmConfigPatchesJSON6902[0].patch: not an RFC 6902 patch`}},
		{"invalid-toml.yaml", []string{`invalid-toml.yaml:7: containerdConfigPatches[1]: not valid TOML: toml: line 1`}},
		{"invalid-containerd-json6902.yaml", []string{`invalid-containerd-json6902.yaml:4: containerdConfigPatchesJSON6902[0]: operation 0 (add): no value`}},
		{"invalid-mount.yaml", []string{
			`invalid-mount.yaml:6: nodes[0].extraMounts[0].containerPath: "data" is not an absolute path`,
			`invalid-mount.yaml:8: nodes[0].extraMounts[0].propagation: unknown propagation "rshared"`,
		}},
		{"invalid-v1alpha4-old-spelling.yaml", []string{`invalid-v1alpha4-old-spelling.yaml:3: kubeadmConfigPatchesJson6902: unknown field; did you mean "kubeadmConfigPatchesJSON6902"?`}},
		{"invalid-v1alpha3-new-spelling.yaml", []string{`invalid-v1alpha3-new-spelling.yaml:3: kubeadmConfigPatchesJSON6902: unknown field; did you mean "kubeadmConfigPatchesJson6902"?`}},
		{"invalid-v1alpha3-propagation.yaml", []string{`invalid-v1alpha3-propagation.yaml:7: nodes[0].extraMounts[0].propagation: unknown propagation "7"`}},
		{"invalid-v1alpha2-networking.yaml", []string{`invalid-v1alpha2-networking.yaml:5: networking: unknown field (accepted fields: apiVersion, kind, nodes)`}},
		{"invalid-v1alpha2-no-control-plane.yaml", []string{`invalid-v1alpha2-no-control-plane.yaml:3: nodes: no control-plane node`}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", path, c)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !hasLinePrefix(lines, "testdata/"+w) {
					t.Errorf("no error line starts with\n  %s\ngot:\n%v", "testdata/"+w, err)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != path || ce.Line == 0 {
				t.Errorf("errors.As(*Error) = %+v, want one with file %s and a line", ce, path)
			}
		})
	}
	// A fixture without a row here would go untested.
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no row in the table", f)
		}
	}
}

func hasLinePrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestBlogConfigs(t *testing.T) {
	for _, f := range []string{"blog-v1alpha2-ha.yaml", "blog-v1alpha3-ha-patches.yaml"} {
		t.Run(f, func(t *testing.T) {
			c, err := Load(filepath.Join("..", "..", "testdata", f))
			if err != nil {
				t.Fatal(err)
			}
			if cp, w := len(c.ControlPlanes()), len(c.Workers()); cp != 3 || w != 1 {
				t.Errorf("got %d control planes and %d workers, want 3 and 1", cp, w)
			}
		})
	}
	// The v1alpha3 patch text reaches the Cluster byte for byte.
	c, err := Load("../../testdata/blog-v1alpha3-ha-patches.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: kubeadm.k8s.io/v1beta1
kind: ClusterConfiguration
metadata:
  name: config
apiServer:
  extraArgs:
    enable-admission-plugins: "AlwaysPullImages,NodeRestriction"
`
	if len(c.KubeadmConfigPatches) != 1 || c.KubeadmConfigPatches[0] != want {
		t.Errorf("KubeadmConfigPatches = %q, want [%q]", c.KubeadmConfigPatches, want)
	}
}

func TestConvertV1Alpha2(t *testing.T) {
	c, err := Load("testdata/valid-v1alpha2-replicas.yaml")
	if err != nil {
		t.Fatal(err)
	}
	roles := []NodeRole{}
	for _, n := range c.Nodes {
		roles = append(roles, n.Role)
	}
	wantRoles := "[control-plane control-plane control-plane worker worker]"
	if got := fmt.Sprint(roles); got != wantRoles {
		t.Errorf("roles = %v, want %s (load balancer dropped, replicas expanded, replicas 0 skipped)", roles, wantRoles)
	}
	if len(c.KubeadmConfigPatches) != 1 || len(c.KubeadmConfigPatchesJSON6902) != 1 {
		t.Errorf("the first control plane's patches should be cluster-wide: %d merge, %d JSON 6902", len(c.KubeadmConfigPatches), len(c.KubeadmConfigPatchesJSON6902))
	}
	for i, n := range c.Nodes {
		if len(n.KubeadmConfigPatches)+len(n.KubeadmConfigPatchesJSON6902) != 0 {
			t.Errorf("nodes[%d] kept patches that moved to the cluster", i)
		}
	}
	if got := c.Nodes[3].ExtraMounts[0].Propagation; got != MountPropagationHostToContainer {
		t.Errorf("propagation 1 converted to %q, want HostToContainer", got)
	}
	if c.Nodes[4].Image != "kindest/node:v1.13.4" {
		t.Errorf("replica image = %q", c.Nodes[4].Image)
	}
}

// Lines of errors in converted versions point at the original place.
func TestConvertedLines(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{
			"v1alpha2 replica",
			"apiVersion: kind.sigs.k8s.io/v1alpha2\nkind: Config\nnodes:\n- role: control-plane\n  replicas: 2\n- role: worker\n  extraMounts:\n  - containerPath: rel\n    hostPath: /tmp\n",
			"c.yaml:8: nodes[2].extraMounts[0].containerPath:",
		},
		{
			"v1alpha2 patch made cluster-wide",
			"apiVersion: kind.sigs.k8s.io/v1alpha2\nkind: Config\nnodes:\n- role: control-plane\n  kubeadmConfigPatchesJson6902:\n  - kind: X\n    patch: '[]'\n",
			"c.yaml:6: kubeadmConfigPatchesJSON6902[0].version: missing",
		},
		{
			"v1alpha3 old spelling",
			"apiVersion: kind.sigs.k8s.io/v1alpha3\nkind: Cluster\nkubeadmConfigPatchesJson6902:\n- version: v1\n  kind: X\n  patch: '{'\n",
			"c.yaml:6: kubeadmConfigPatchesJSON6902[0].patch: not valid YAML or JSON",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestParseDocumentErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "c.yaml: empty config; start it with apiVersion: kind.x-k8s.io/v1alpha4 and kind: Cluster"},
		{"comments only", "# nothing\n", "c.yaml: empty config"},
		{"not a mapping", "- a\n- b\n", "c.yaml:1: wrong type: want a mapping with apiVersion and kind, got a list"},
		{"missing kind", "apiVersion: kind.x-k8s.io/v1alpha4\n", "c.yaml:1: kind: missing; accepted:"},
		{"scanner error", "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: a: b\n", "c.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"parser error", "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnodes:\n  - role: worker\n role: x\n", "c.yaml:5: invalid YAML: did not find expected key"},
		{"non-string key", "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nfeatureGates:\n  [a]: true\n", "c.yaml:4: featureGates: wrong type: a key must be a string, got a list"},
		{"int out of range", "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnetworking:\n  apiServerPort: 99999999999\n", `c.yaml:4: networking.apiServerPort: wrong type: want an integer (32 bits), got integer "99999999999"`},
		{"merge cycle", "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnetworking: &a {<<: *a}\n", "c.yaml:3: networking: a merge key (<<) refers to a mapping that contains it"},
		{"label map key quoted", "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnodes:\n- labels:\n    example.com/zone: [a]\n", `c.yaml:5: nodes[0].labels["example.com/zone"]: wrong type: want a string, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

// aliasBomb would expand to 10^9 merged mappings if merge keys were
// followed without a bound.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnetworking:\n  m0: &m0 {ipFamily: ipv4}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  m%d: &m%d {<<: [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("featureGates: {<<: *m9}\n")
	return b.String()
}

func TestAliasBomb(t *testing.T) {
	_, err := Parse("c.yaml", []byte(aliasBomb()))
	if err == nil || !strings.Contains(err.Error(), ": featureGates: document too large after expanding aliases") {
		t.Errorf("Parse(alias bomb) error = %v, want document too large", err)
	}
}

func TestLoadStdinAndNoFile(t *testing.T) {
	c, err := Load("-", WithStdin(strings.NewReader("apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: from-stdin\n")))
	if err != nil || c.Name != "from-stdin" {
		t.Errorf("Load(-) = %+v, %v; want the cluster named from-stdin", c, err)
	}
	_, err = Load("-", WithStdin(strings.NewReader("apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnam: x\n")))
	if err == nil || !strings.HasPrefix(err.Error(), `<stdin>:3: nam: unknown field; did you mean "name"?`) {
		t.Errorf("Load(-) error = %v, want it placed at <stdin>:3", err)
	}
	c, err = Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "kinc" || len(c.Nodes) != 1 || c.Nodes[0].Role != ControlPlaneRole {
		t.Errorf(`Load("") = %+v, want one control plane named kinc`, c)
	}
	_, err = Load("testdata/no-such-file.yaml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want os.ErrNotExist", err)
	}
}
