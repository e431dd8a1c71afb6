package kubeadm

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/kinc-dev/kinc/cluster/config"
)

// scalarAt reads a scalar of one document, "" when absent.
func scalarAt(t *testing.T, doc *yaml.RNode, path ...string) string {
	t.Helper()
	n, err := doc.Pipe(yaml.Lookup(path...))
	if err != nil || n == nil {
		return ""
	}
	return n.YNode().Value
}

func TestPatches(t *testing.T) {
	type check func(t *testing.T, docs map[string]*yaml.RNode, warnings []string)
	argIs := func(kind string, path []string, name string, want ...string) check {
		return func(t *testing.T, docs map[string]*yaml.RNode, _ []string) {
			got := extraArgs(t, docs[kind], path...)[name]
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s %s %s = %q, want %q", kind, strings.Join(path, "."), name, got, want)
			}
		}
	}
	valueIs := func(kind string, path []string, want string) check {
		return func(t *testing.T, docs map[string]*yaml.RNode, _ []string) {
			if got := scalarAt(t, docs[kind], path...); got != want {
				t.Errorf("%s %s = %q, want %q", kind, strings.Join(path, "."), got, want)
			}
		}
	}
	warns := func(substr string) check {
		return func(t *testing.T, _ map[string]*yaml.RNode, warnings []string) {
			for _, w := range warnings {
				if strings.Contains(w, substr) {
					return
				}
			}
			t.Errorf("warnings %q lack %q", warnings, substr)
		}
	}
	noWarnings := func(t *testing.T, _ map[string]*yaml.RNode, warnings []string) {
		if len(warnings) > 0 {
			t.Errorf("unexpected warnings %q", warnings)
		}
	}
	apiServer := []string{"apiServer", "extraArgs"}
	kubeletArgs := []string{"nodeRegistration", "kubeletExtraArgs"}

	for _, tc := range []struct {
		name     string
		version  string
		worker   bool // render the worker's (join) config instead of init
		merge    []string
		json6902 []config.PatchJSON6902
		node     []string // merge patches of the rendered node
		checks   []check
	}{
		{
			name:    "v1alpha3 fields move under their component",
			version: "v1.34.4",
			merge:   []string{"apiVersion: kubeadm.k8s.io/v1alpha3\nkind: ClusterConfiguration\napiServerExtraArgs:\n  audit-log-maxage: \"30\"\napiServerCertSANs: [example.test]\n"},
			checks: []check{
				argIs("ClusterConfiguration", apiServer, "audit-log-maxage", "30"),
				valueIs("ClusterConfiguration", []string{"apiServer", "certSANs", "[=example.test]"}, "example.test"),
				noWarnings,
			},
		},
		{
			name:    "v1beta4 list patch on a v1beta3 rendering becomes a map",
			version: "v1.29.2",
			merge:   []string{"apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n  - name: enable-hostpath-provisioner\n    value: \"false\"\n  - name: v\n    value: \"4\"\n"},
			checks: []check{
				argIs("ClusterConfiguration", []string{"controllerManager", "extraArgs"}, "enable-hostpath-provisioner", "false"),
				argIs("ClusterConfiguration", []string{"controllerManager", "extraArgs"}, "v", "4"),
				valueIs("ClusterConfiguration", []string{"apiVersion"}, "kubeadm.k8s.io/v1beta3"),
			},
		},
		{
			name:    "map patch replaces a rendered list arg without duplicating it",
			version: "v1.34.4",
			merge:   []string{"apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\ncontrollerManager:\n  extraArgs:\n    enable-hostpath-provisioner: false\n"},
			checks: []check{
				argIs("ClusterConfiguration", []string{"controllerManager", "extraArgs"}, "enable-hostpath-provisioner", "false"),
			},
		},
		{
			name:    "node patch comes after the cluster's",
			version: "v1.34.4",
			worker:  true,
			merge:   []string{"kind: JoinConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    max-pods: \"50\"\n"},
			node:    []string{"apiVersion: kubeadm.k8s.io/v1beta2\nkind: JoinConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    max-pods: \"70\"\n"},
			checks: []check{
				argIs("JoinConfiguration", kubeletArgs, "max-pods", "70"),
				argIs("JoinConfiguration", kubeletArgs, "node-ip", "10.89.0.3"),
				noWarnings,
			},
		},
		{
			name:    "kubelet and kube-proxy documents take patches too",
			version: "v1.34.4",
			merge: []string{
				"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 42\n",
				"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n",
			},
			checks: []check{
				valueIs("KubeletConfiguration", []string{"maxPods"}, "42"),
				valueIs("KubeletConfiguration", []string{"failSwapOn"}, "false"),
				valueIs("KubeProxyConfiguration", []string{"mode"}, "ipvs"),
			},
		},
		{
			name:    "another group's kind is left alone",
			version: "v1.34.4",
			merge:   []string{"apiVersion: example.com/v1\nkind: ClusterConfiguration\nclusterName: other\n"},
			checks: []check{
				valueIs("ClusterConfiguration", []string{"clusterName"}, "kinc"),
				warns(`matches no document kinc renders`),
			},
		},
		{
			name:    "a misspelt kind warns",
			version: "v1.34.4",
			merge:   []string{"kind: ClusterConfig\nclusterName: other\n"},
			checks:  []check{warns("ClusterConfig")},
		},
		{
			name:    "a patch for a document this node lacks is no warning",
			version: "v1.34.4",
			worker:  true,
			merge:   []string{blogPatch},
			checks:  []check{noWarnings},
		},
		{
			name:    "removed fields are dropped with a warning",
			version: "v1.34.4",
			merge:   []string{"apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\napiServer:\n  timeoutForControlPlane: 4m0s\ndns:\n  type: CoreDNS\n"},
			checks: []check{
				valueIs("ClusterConfiguration", []string{"apiServer", "timeoutForControlPlane"}, ""),
				valueIs("ClusterConfiguration", []string{"dns", "type"}, ""),
				warns("timeoutForControlPlane"),
				warns("dns.type"),
			},
		},
		{
			name:    "v1beta3 discovery timeout moves to timeouts",
			version: "v1.34.4",
			worker:  true,
			merge:   []string{"apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\ndiscovery:\n  timeout: 2m0s\n"},
			checks: []check{
				valueIs("JoinConfiguration", []string{"timeouts", "discovery"}, "2m0s"),
				valueIs("JoinConfiguration", []string{"discovery", "timeout"}, ""),
				valueIs("JoinConfiguration", []string{"discovery", "file", "kubeConfigPath"}, DiscoveryFile),
			},
		},
		{
			name:    "json6902 in v1beta4 list form on a v1beta3 rendering",
			version: "v1.29.2",
			json6902: []config.PatchJSON6902{{Group: "kubeadm.k8s.io", Version: "v1beta4", Kind: "ClusterConfiguration",
				Patch: `[{"op": "add", "path": "/apiServer/extraArgs", "value": [{"name": "v", "value": "5"}]}]`}},
			checks: []check{argIs("ClusterConfiguration", apiServer, "v", "5")},
		},
		{
			name:    "json6902 of another version's shape keeps the rendered order",
			version: "v1.34.4",
			json6902: []config.PatchJSON6902{{Group: "kubeadm.k8s.io", Version: "v1beta2", Kind: "ClusterConfiguration",
				Patch: "- op: replace\n  path: /controllerManager/extraArgs/enable-hostpath-provisioner\n  value: \"false\"\n"}},
			checks: []check{
				argIs("ClusterConfiguration", []string{"controllerManager", "extraArgs"}, "enable-hostpath-provisioner", "false"),
				func(t *testing.T, docs map[string]*yaml.RNode, _ []string) {
					fields, _ := docs["ClusterConfiguration"].Fields()
					if len(fields) < 2 || fields[0] != "apiVersion" || fields[1] != "kind" {
						t.Errorf("fields in order %q, want apiVersion and kind first", fields)
					}
				},
			},
		},
		{
			name:    "json6902 matches by group and kind only",
			version: "v1.34.4",
			json6902: []config.PatchJSON6902{{Group: "kubelet.config.k8s.io", Version: "v1", Kind: "KubeletConfiguration",
				Patch: `[{"op": "replace", "path": "/cgroupDriver", "value": "cgroupfs"}]`}},
			checks: []check{valueIs("KubeletConfiguration", []string{"cgroupDriver"}, "cgroupfs")},
		},
		{
			name:    "node labels survive a patch of node-labels",
			version: "v1.34.4",
			node:    []string{"kind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    node-labels: \"ingress-ready=true,tier=edge\"\n"},
			checks:  []check{argIs("InitConfiguration", kubeletArgs, "node-labels", "ingress-ready=true,tier=edge,zone=a")},
		},
		{
			name:    "one patch text with two documents",
			version: "v1.34.4",
			merge:   []string{"kind: KubeletConfiguration\nmaxPods: 33\n---\nkind: KubeProxyConfiguration\nmode: nftables\n"},
			checks: []check{
				valueIs("KubeletConfiguration", []string{"maxPods"}, "33"),
				valueIs("KubeProxyConfiguration", []string{"mode"}, "nftables"),
				noWarnings,
			},
		},
		{
			name:    "metadata of kind's examples is dropped",
			version: "v1.34.4",
			merge:   []string{blogPatch},
			checks:  []check{valueIs("ClusterConfiguration", []string{"metadata", "name"}, "")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCluster(config.ControlPlaneRole, config.WorkerRole)
			c.KubeadmConfigPatches = tc.merge
			c.KubeadmConfigPatchesJSON6902 = tc.json6902
			i := 0
			if tc.worker {
				i = 1
			}
			c.Nodes[0].Labels = map[string]string{"tier": "control", "zone": "a"}
			c.Nodes[i].KubeadmConfigPatches = tc.node
			res, err := Config(nodeInputs(c, tc.version, nil)[i])
			if err != nil {
				t.Fatal(err)
			}
			docs := documents(t, res.YAML)
			for _, check := range tc.checks {
				check(t, docs, res.Warnings)
			}
			if t.Failed() {
				t.Logf("rendered:\n%s", res.YAML)
			}
		})
	}
}

func TestPatchErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		merge    []string
		json6902 []config.PatchJSON6902
		want     string
	}{
		{name: "merge patch is not YAML", merge: []string{"kind: [x"}, want: "kubeadmConfigPatches[0]"},
		{name: "merge patch has no kind", merge: []string{"clusterName: x\n"}, want: "no kind"},
		{name: "json6902 path missing", json6902: []config.PatchJSON6902{{Group: "kubeadm.k8s.io", Version: "v1beta4", Kind: "ClusterConfiguration",
			Patch: `[{"op": "replace", "path": "/nope/deeper", "value": 1}]`}}, want: "kubeadmConfigPatchesJSON6902[0]"},
		{name: "json6902 not a patch", json6902: []config.PatchJSON6902{{Group: "kubeadm.k8s.io", Version: "v1beta4", Kind: "ClusterConfiguration",
			Patch: `{"op": "add"}`}}, want: "parsing patch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testCluster(config.ControlPlaneRole)
			c.KubeadmConfigPatches = tc.merge
			c.KubeadmConfigPatchesJSON6902 = tc.json6902
			_, err := Config(nodeInputs(c, "v1.34.4", nil)[0])
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigInputErrors(t *testing.T) {
	c := testCluster(config.ControlPlaneRole)
	for _, tc := range []struct {
		name string
		in   NodeInput
		want string
	}{
		{"no cluster", NodeInput{NodeName: "n", KubernetesVersion: "v1.34.4"}, "no cluster config"},
		{"no name", NodeInput{Cluster: c, NodeIP: "10.0.0.2", Token: testToken, FirstControlPlane: true}, "no node name"},
		{"no address", NodeInput{Cluster: c, NodeName: "n", Token: testToken, FirstControlPlane: true}, "no node address"},
		{"no token", NodeInput{Cluster: c, NodeName: "n", NodeIP: "10.0.0.2", FirstControlPlane: true}, "no bootstrap token"},
		{"join without endpoint", NodeInput{Cluster: c, NodeName: "n", NodeIP: "10.0.0.2", Token: testToken}, "no control-plane endpoint"},
		{"bad version", NodeInput{Cluster: c, NodeName: "n", NodeIP: "10.0.0.2", Token: testToken, FirstControlPlane: true, KubernetesVersion: "latest"}, `"latest"`},
		{"too old", NodeInput{Cluster: c, NodeName: "n", NodeIP: "10.0.0.2", Token: testToken, FirstControlPlane: true, KubernetesVersion: "v1.14.10"}, "too old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Config(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestKubeadmAPIVersion(t *testing.T) {
	for v, want := range map[string]string{
		"v1.15.0": "v1beta2", "v1.22.17": "v1beta2", "v1.23.0": "v1beta3", "1.30.4": "v1beta3",
		"v1.31.0": "v1beta4", "v1.34.4": "v1beta4", "v1.37.2": "v1beta4", "v1.38.0-alpha.1": "v1beta4", "v2.0.0": "v1beta4",
	} {
		pv, err := parseVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := kubeadmAPIVersion(pv); err != nil || got != want {
			t.Errorf("%s: got %s %v, want %s", v, got, err, want)
		}
	}
}

// Lists the merge cannot pair items of (empty ones, objects without a
// name) are kept when the patch leaves them alone and replaced when it
// gives its own.
func TestMergeUnkeyedLists(t *testing.T) {
	const doc = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nbootstrapTokens:\n- token: abc.def\nnodeRegistration:\n  name: n\n  taints: []\n"
	for _, tc := range []struct {
		name, patch string
		want        []string
	}{
		{"untouched", "kind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    node-labels: a=b\n",
			[]string{"taints: []", "- token: abc.def", "value: a=b"}},
		{"replaced", "kind: InitConfiguration\nnodeRegistration:\n  taints:\n  - {key: k, effect: NoSchedule}\n",
			[]string{"key: k", "effect: NoSchedule", "- token: abc.def"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs := []*yaml.RNode{yaml.MustParse(doc)}
			if _, err := mergeOne(docs, yaml.MustParse(tc.patch)); err != nil {
				t.Fatal(err)
			}
			out := docs[0].MustString()
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("merged document lacks %q:\n%s", w, out)
				}
			}
			if tc.name == "replaced" && strings.Contains(out, "taints: []") {
				t.Errorf("the patch's taints did not replace the document's:\n%s", out)
			}
		})
	}
}
