package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Every valid config the project ships dry-runs; the blog's HA configs
// plan three control planes, a worker and a load balancer.
func TestDryRunValidConfigs(t *testing.T) {
	files, _ := filepath.Glob("../testdata/*.yaml")
	more, _ := filepath.Glob("../cluster/config/testdata/valid-*.yaml")
	files = append(files, more...)
	if len(files) < 5 {
		t.Fatalf("found only %d configs", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errOut := run(t, "", "create", "cluster", "--dry-run", "--config", f)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var plan struct {
				Name  string
				Nodes []struct {
					Name          string
					KubeadmConfig string `yaml:"kubeadmConfig"`
				}
			}
			if err := yaml.Unmarshal([]byte(out), &plan); err != nil {
				t.Fatalf("dry-run output is not YAML: %v\n%s", err, out)
			}
			if plan.Name == "" || len(plan.Nodes) == 0 {
				t.Fatalf("empty plan:\n%s", out)
			}
			for _, n := range plan.Nodes {
				if !strings.HasPrefix(n.Name, plan.Name+"-") || !strings.Contains(n.KubeadmConfig, "kind: KubeletConfiguration") {
					t.Errorf("node %q: bad name or kubeadm config", n.Name)
				}
			}
		})
	}
}

func TestDryRunBlogHA(t *testing.T) {
	for _, f := range []string{"blog-v1alpha2-ha.yaml", "blog-v1alpha3-ha-patches.yaml"} {
		t.Run(f, func(t *testing.T) {
			code, out, errOut := run(t, "", "create", "cluster", "--dry-run", "-o", "json", "--config", "../testdata/"+f)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var plan struct {
				Nodes []struct {
					Name  string
					Ports []struct{ ContainerPort int }
				}
				LoadBalancer *struct {
					Name   string
					Config string
					Ports  []struct{ ContainerPort int }
				}
			}
			if err := json.Unmarshal([]byte(out), &plan); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range plan.Nodes {
				names = append(names, n.Name)
				if len(n.Ports) != 0 {
					t.Errorf("node %s publishes ports; only the load balancer should", n.Name)
				}
			}
			want := "kinc-control-plane kinc-control-plane2 kinc-control-plane3 kinc-worker"
			if got := strings.Join(names, " "); got != want {
				t.Errorf("nodes %q, want %q", got, want)
			}
			if plan.LoadBalancer == nil || plan.LoadBalancer.Name != "kinc-external-load-balancer" {
				t.Fatalf("no load balancer planned: %+v", plan.LoadBalancer)
			}
			for _, cp := range []string{"kinc-control-plane:6443", "kinc-control-plane2:6443", "kinc-control-plane3:6443"} {
				if !strings.Contains(plan.LoadBalancer.Config, cp) {
					t.Errorf("load balancer config lacks backend %s", cp)
				}
			}
			if len(plan.LoadBalancer.Ports) != 1 || plan.LoadBalancer.Ports[0].ContainerPort != 6443 {
				t.Errorf("load balancer ports %+v", plan.LoadBalancer.Ports)
			}
		})
	}
}

func TestDryRunNameAndStdin(t *testing.T) {
	cfg := "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: fromfile\nnodes:\n- role: control-plane\n- role: worker\n"
	code, out, errOut := run(t, cfg, "create", "cluster", "--dry-run", "--config", "-", "--name", "flag", "--image", "example/node:v1.35.4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"name: flag\n", "name: flag-worker", "image: example/node:v1.35.4", "kubernetesVersion: v1.35.4"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// Each invalid fixture fails with its file, a line number and the field.
func TestDryRunInvalidConfigs(t *testing.T) {
	files, _ := filepath.Glob("../cluster/config/testdata/invalid-*.yaml")
	if len(files) < 10 {
		t.Fatalf("found only %d invalid configs", len(files))
	}
	pos := regexp.MustCompile(`invalid-[a-z0-9-]+\.yaml:\d+: `)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			code, out, errOut := run(t, "", "create", "cluster", "--dry-run", "--config", f)
			if code == 0 {
				t.Fatalf("accepted:\n%s", out)
			}
			if !pos.MatchString(errOut) {
				t.Errorf("error does not say file:line: %s", errOut)
			}
			if out != "" {
				t.Errorf("printed a plan on error:\n%s", out)
			}
		})
	}
}

// A missing node image fails before anything is made, naming the fix.
func TestCreateMissingImage(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a container runtime")
	}
	for _, rt := range testRuntimes() {
		t.Run(rt, func(t *testing.T) {
			run(t, "", "--runtime", rt, "delete", "cluster", "--name", "missing-image") // an aborted earlier run's
			code, _, errOut := run(t, "", "--runtime", rt, "create", "cluster", "--name", "missing-image", "--image", "kinc-test/absent:v1.34.4")
			if code == 0 || !strings.Contains(errOut, "kinc build node-image --load") {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			code, out, errOut := run(t, "", "--runtime", rt, "get", "nodes", "--name", "missing-image")
			if code != 0 || strings.TrimSpace(out) != "" {
				t.Fatalf("nodes left behind (exit %d): %q %q", code, out, errOut)
			}
		})
	}
}

// TestCreateIPVSWithoutKernelSupport asks for kube-proxy's ipvs mode on a
// host whose kernel has no IPVS: create refuses before making anything
// and says how to fix it.
func TestCreateIPVSWithoutKernelSupport(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a container runtime")
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this host has IPVS: the refusal cannot be seen here")
	}
	rt := testRuntimes()[0]
	cfg := "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnetworking:\n  kubeProxyMode: ipvs\n"
	run(t, "", "--runtime", rt, "delete", "cluster", "--name", "no-ipvs") // an aborted earlier run's
	code, _, errOut := run(t, cfg, "--runtime", rt, "create", "cluster", "--name", "no-ipvs", "--config", "-")
	if code == 0 || !strings.Contains(errOut, "kubeProxyMode ipvs needs the host kernel's IPVS") || !strings.Contains(errOut, "modprobe") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	assertGone(t, rt, "no-ipvs")
}

// TestDisableDefaultCNI makes a cluster without the default CNI: it comes
// up (no --wait: it cannot turn Ready), kinc installs no CNI, and the node
// says it waits for one.
func TestDisableDefaultCNI(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a real cluster")
	}
	rts := testRuntimes()
	rt := rts[len(rts)-1]
	ensureNodeImage(t, rt)
	const name = "e2e-no-cni"
	kc := filepath.Join(t.TempDir(), "config")
	freshCluster(t, rt, name, kc)
	cfg := "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnetworking:\n  disableDefaultCNI: true\n"
	if code, out, errOut := run(t, cfg, "--runtime", rt, "create", "cluster", "--name", name, "--config", "-", "--kubeconfig", kc); code != 0 {
		t.Fatalf("create: exit %d\n%s\n%s", code, out, errOut)
	}
	k := kubectl{t: t, bin: kubectlBinary(t), kubeconfig: kc, context: "kinc-" + name}
	if ds := k.must("-n", "kube-system", "get", "daemonsets", "-o", "name"); strings.Contains(ds, "flannel") {
		t.Errorf("a CNI was installed: %s", ds)
	}
	if out, err := execIn(rt, name+"-control-plane", "ls", "/etc/cni/net.d"); err == nil && strings.TrimSpace(out) != "" {
		t.Errorf("/etc/cni/net.d holds %q", out)
	}
	ready := k.must("get", "node", name+"-control-plane", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].message}`)
	if !strings.Contains(ready, "cni") && !strings.Contains(ready, "network") {
		t.Errorf("node's Ready condition does not say it waits for a network plugin: %q", ready)
	}
	if code, _, errOut := run(t, "", "--runtime", rt, "delete", "cluster", "--name", name, "--kubeconfig", kc); code != 0 {
		t.Fatalf("delete: exit %d: %s", code, errOut)
	}
	assertGone(t, rt, name)
}
