package kubeadm

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/kinc-dev/kinc/cluster/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testToken = DefaultToken

// blogPatch is the patch of the kind blog's HA example, written for
// kubeadm's v1beta1 API.
const blogPatch = `apiVersion: kubeadm.k8s.io/v1beta1
kind: ClusterConfiguration
metadata:
  name: config
apiServer:
  extraArgs:
    enable-admission-plugins: "AlwaysPullImages,NodeRestriction"
`

// testCluster is a defaulted cluster of the given roles, as config would
// make it.
func testCluster(roles ...config.NodeRole) *config.Cluster {
	c := &config.Cluster{
		Name: "kinc",
		Networking: config.Networking{
			IPFamily:         config.IPv4Family,
			APIServerAddress: "127.0.0.1",
			PodSubnet:        "10.244.0.0/16",
			ServiceSubnet:    "10.96.0.0/16",
			KubeProxyMode:    config.IPTablesProxyMode,
		},
	}
	for _, r := range roles {
		c.Nodes = append(c.Nodes, config.Node{Role: r, Image: "kinc/node:test"})
	}
	return c
}

// nodeInputs names the nodes as create does and gives each one an
// address, the first control plane running init.
func nodeInputs(c *config.Cluster, version string, edit func(*NodeInput)) []NodeInput {
	controlPlanes := 0
	for _, n := range c.Nodes {
		if n.Role == config.ControlPlaneRole {
			controlPlanes++
		}
	}
	endpoint := c.Name + "-control-plane:6443"
	if controlPlanes > 1 {
		endpoint = c.Name + "-external-load-balancer:6443"
	}
	count := map[config.NodeRole]int{}
	var ins []NodeInput
	for i, n := range c.Nodes {
		count[n.Role]++
		name := c.Name + "-" + string(n.Role)
		if count[n.Role] > 1 {
			name += fmt.Sprint(count[n.Role])
		}
		ip := fmt.Sprintf("10.89.0.%d", i+2)
		if c.Networking.IPFamily == config.IPv6Family {
			ip = fmt.Sprintf("fc00:f853:ccd:e793::%d", i+2)
		} else if c.Networking.IPFamily == config.DualStack {
			ip += fmt.Sprintf(",fc00:f853:ccd:e793::%d", i+2)
		}
		in := NodeInput{
			Cluster:              c,
			Node:                 n,
			NodeName:             name,
			NodeIP:               ip,
			ControlPlaneEndpoint: endpoint,
			KubernetesVersion:    version,
			CgroupDriver:         "systemd",
			Token:                testToken,
			FirstControlPlane:    i == 0,
		}
		if edit != nil {
			edit(&in)
		}
		ins = append(ins, in)
	}
	return ins
}

type goldenCase struct {
	name    string
	cluster *config.Cluster
	version string
	edit    func(*NodeInput)
	// nodes picks which nodes get a golden file, by index.
	nodes []int
}

func goldenCases() []goldenCase {
	blog := testCluster(config.ControlPlaneRole, config.ControlPlaneRole, config.ControlPlaneRole, config.WorkerRole)
	blog.KubeadmConfigPatches = []string{blogPatch}

	nodePatches := testCluster(config.ControlPlaneRole, config.WorkerRole)
	nodePatches.Nodes[0].Labels = map[string]string{"tier": "control", "topology.kubernetes.io/zone": "a"}
	nodePatches.Nodes[0].KubeadmConfigPatches = []string{"kind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    node-labels: \"ingress-ready=true\"\n"}
	nodePatches.Nodes[0].KubeadmConfigPatchesJSON6902 = []config.PatchJSON6902{{
		Group: "kubeadm.k8s.io", Version: "v1beta3", Kind: "InitConfiguration",
		Patch: "- op: add\n  path: /nodeRegistration/taints\n  value: []\n",
	}}
	nodePatches.Nodes[1].KubeadmConfigPatchesJSON6902 = []config.PatchJSON6902{{
		Group: "kubeadm.k8s.io", Version: "v1beta3", Kind: "JoinConfiguration",
		Patch: `[{"op": "add", "path": "/nodeRegistration/kubeletExtraArgs/max-pods", "value": "64"}]`,
	}}
	nodePatches.KubeadmConfigPatchesJSON6902 = []config.PatchJSON6902{{
		Group: "kubeadm.k8s.io", Version: "v1beta3", Kind: "ClusterConfiguration",
		Patch: "- op: add\n  path: /apiServer/certSANs/-\n  value: my-hostname\n",
	}}

	gates := testCluster(config.ControlPlaneRole)
	gates.FeatureGates = map[string]bool{"InPlacePodVerticalScaling": true, "SidecarContainers": false, "ControlPlaneKubeletLocalMode": true}
	gates.RuntimeConfig = map[string]string{"api/alpha": "false", "resource.k8s.io/v1beta1": "true"}

	nftables := testCluster(config.ControlPlaneRole)
	nftables.Networking.KubeProxyMode = config.NFTablesProxyMode

	none := testCluster(config.ControlPlaneRole, config.WorkerRole)
	none.Networking.KubeProxyMode = config.NoneProxyMode

	dual := testCluster(config.ControlPlaneRole, config.WorkerRole)
	dual.Networking.IPFamily = config.DualStack
	dual.Networking.PodSubnet = "10.244.0.0/16,fd00:10:244::/56"
	dual.Networking.ServiceSubnet = "10.96.0.0/16,fd00:10:96::/112"

	ipv6 := testCluster(config.ControlPlaneRole)
	ipv6.Networking.IPFamily = config.IPv6Family
	ipv6.Networking.APIServerAddress = "::1"
	ipv6.Networking.PodSubnet = "fd00:10:244::/56"
	ipv6.Networking.ServiceSubnet = "fd00:10:96::/112"

	return []goldenCase{
		{name: "single-v1.34.4", cluster: testCluster(config.ControlPlaneRole), version: "v1.34.4", nodes: []int{0},
			edit: func(in *NodeInput) { in.CgroupDriver = "cgroupfs"; in.UntaintControlPlane = true }},
		{name: "blog-ha-v1.34.4", cluster: blog, version: "v1.34.4", nodes: []int{0, 1, 3},
			edit: func(in *NodeInput) {
				in.CertificateKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			}},
		{name: "v1.37.2", cluster: testCluster(config.ControlPlaneRole, config.WorkerRole), version: "v1.37.2", nodes: []int{0, 1}},
		{name: "v1beta3-v1.29.2", cluster: testCluster(config.ControlPlaneRole, config.WorkerRole), version: "v1.29.2", nodes: []int{0, 1},
			edit: func(in *NodeInput) { in.Provider = "podman" }},
		{name: "node-patches-v1.34.4", cluster: nodePatches, version: "v1.34.4", nodes: []int{0, 1}},
		{name: "gates-runtimeconfig-v1.34.4", cluster: gates, version: "v1.34.4", nodes: []int{0}},
		{name: "nftables-v1.34.4", cluster: nftables, version: "v1.34.4", nodes: []int{0}},
		{name: "rootless-nftables-v1.34.4", cluster: nftables, version: "v1.34.4", nodes: []int{0},
			edit: func(in *NodeInput) { in.Rootless = true }},
		{name: "proxy-none-v1.34.4", cluster: none, version: "v1.34.4", nodes: []int{0, 1}},
		{name: "dual-stack-v1.34.4", cluster: dual, version: "v1.34.4", nodes: []int{0, 1}},
		{name: "ipv6-v1.34.4", cluster: ipv6, version: "v1.34.4", nodes: []int{0}},
	}
}

// goldenName is the file of one node of a case: its role in kubeadm's
// eyes (init, join-control-plane, join-worker) and its index.
func goldenName(c goldenCase, i int, in NodeInput) string {
	what := "init"
	if !in.FirstControlPlane {
		what = "join-" + string(in.Node.Role)
	}
	return filepath.Join("testdata", fmt.Sprintf("%s.node%d-%s.golden", c.name, i, what))
}

func TestConfigGolden(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range goldenCases() {
		ins := nodeInputs(c.cluster, c.version, c.edit)
		for _, i := range c.nodes {
			in := ins[i]
			path := goldenName(c, i, in)
			seen[filepath.Base(path)] = true
			t.Run(filepath.Base(path), func(t *testing.T) {
				res, err := Config(in)
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Warnings) > 0 {
					t.Errorf("unexpected warnings: %q", res.Warnings)
				}
				checkGolden(t, path, res.YAML)
			})
		}
	}
	// A golden file no case writes any more is a stale promise.
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden"))
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s belongs to no case; remove it", f)
		}
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cluster/kubeadm -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./cluster/kubeadm -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// documents parses a rendered config into its documents by kind.
func documents(t *testing.T, text string) map[string]*yaml.RNode {
	t.Helper()
	docs := map[string]*yaml.RNode{}
	for _, part := range strings.Split(text, "\n---\n") {
		n, err := yaml.Parse(part)
		if err != nil {
			t.Fatal(err)
		}
		if docs[n.GetKind()] != nil {
			t.Fatalf("two %s documents", n.GetKind())
		}
		docs[n.GetKind()] = n
	}
	return docs
}

// extraArgs reads a component's extra arguments in either shape, keeping
// every occurrence of a name.
func extraArgs(t *testing.T, doc *yaml.RNode, path ...string) map[string][]string {
	t.Helper()
	n, err := doc.Pipe(yaml.Lookup(path...))
	if err != nil || n == nil {
		t.Fatalf("no %s in %s", strings.Join(path, "."), doc.MustString())
	}
	args := map[string][]string{}
	y := n.YNode()
	switch y.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(y.Content); i += 2 {
			args[y.Content[i].Value] = append(args[y.Content[i].Value], y.Content[i+1].Value)
		}
	case yaml.SequenceNode:
		for _, e := range y.Content {
			name, value := fieldOf(e, "name"), fieldOf(e, "value")
			if name == nil || value == nil {
				t.Fatalf("argument without name or value in %s", n.MustString())
			}
			args[name.Value] = append(args[name.Value], value.Value)
		}
	}
	return args
}

// The blog's v1beta1 patch must reach the API server in every kubeadm API
// version kinc renders, once.
func TestBlogPatchEveryVersion(t *testing.T) {
	for _, tc := range []struct{ version, apiVersion string }{
		{"v1.22.17", "kubeadm.k8s.io/v1beta2"},
		{"v1.29.2", "kubeadm.k8s.io/v1beta3"},
		{"v1.30.0", "kubeadm.k8s.io/v1beta3"},
		{"v1.31.0", "kubeadm.k8s.io/v1beta4"},
		{"v1.34.4", "kubeadm.k8s.io/v1beta4"},
		{"v1.37.2", "kubeadm.k8s.io/v1beta4"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			c := testCluster(config.ControlPlaneRole, config.ControlPlaneRole, config.ControlPlaneRole, config.WorkerRole)
			c.KubeadmConfigPatches = []string{blogPatch}
			res, err := Config(nodeInputs(c, tc.version, nil)[0])
			if err != nil {
				t.Fatal(err)
			}
			if res.APIVersion != tc.apiVersion || len(res.Warnings) != 0 {
				t.Fatalf("got %s with warnings %q, want %s and none", res.APIVersion, res.Warnings, tc.apiVersion)
			}
			cc := documents(t, res.YAML)["ClusterConfiguration"]
			if cc.GetApiVersion() != tc.apiVersion {
				t.Errorf("ClusterConfiguration apiVersion %q, want %q", cc.GetApiVersion(), tc.apiVersion)
			}
			// The shape the rendered version wants: v1beta4 refuses a map.
			n, _ := cc.Pipe(yaml.Lookup("apiServer", "extraArgs"))
			wantKind := yaml.MappingNode
			if strings.HasSuffix(tc.apiVersion, "/v1beta4") {
				wantKind = yaml.SequenceNode
			}
			if n == nil || n.YNode().Kind != wantKind {
				t.Fatalf("apiServer.extraArgs is not a %v in %s:\n%s", wantKind, tc.apiVersion, cc.MustString())
			}
			args := extraArgs(t, cc, "apiServer", "extraArgs")
			if got := args["enable-admission-plugins"]; len(got) != 1 || got[0] != "AlwaysPullImages,NodeRestriction" {
				t.Errorf("enable-admission-plugins = %q, want exactly [AlwaysPullImages,NodeRestriction]", got)
			}
			// The patch must not lose what kinc rendered in the same place.
			if got := extraArgs(t, cc, "controllerManager", "extraArgs")["enable-hostpath-provisioner"]; len(got) != 1 || got[0] != "true" {
				t.Errorf("enable-hostpath-provisioner = %q after the patch", got)
			}
		})
	}
}

func TestNewCertificateKey(t *testing.T) {
	a, err := NewCertificateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewCertificateKey()
	if len(a) != 64 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Errorf("keys %q and %q: want two different 64-digit hex strings", a, b)
	}
}
