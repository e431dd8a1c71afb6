package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kinc-dev/kinc/nodeimage"
	"github.com/kinc-dev/kinc/nodeimage/gobuild"
	"github.com/kinc-dev/kinc/runtime"
)

// The end-to-end tests make real clusters on real daemons. They share one
// node image build per test binary, loaded once into each runtime.
var (
	nodeImageOnce sync.Once
	nodeImage     *nodeimage.NodeImage
	nodeImageErr  error
	loadedMu      sync.Mutex
	loaded        = map[string]bool{}
)

// ensureNodeImage builds the default node image (cached by content, so
// fast after the first build on a machine) and loads it into runtime rtName.
func ensureNodeImage(t testing.TB, rtName string) {
	t.Helper()
	nodeImageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
		defer cancel()
		start := time.Now()
		nodeImage, nodeImageErr = nodeimage.BuildNode(ctx)
		t.Logf("node image built in %s", time.Since(start).Round(time.Second))
	})
	if nodeImageErr != nil {
		t.Fatalf("building the node image: %v", nodeImageErr)
	}
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if loaded[rtName] {
		return
	}
	ctx := context.Background()
	rt := openTestRuntime(t, rtName)
	start := time.Now()
	if _, err := nodeimage.Load(ctx, rt, nodeImage, nodeimage.DefaultImage); err != nil {
		t.Fatalf("loading the node image into %s: %v", rtName, err)
	}
	t.Logf("node image loaded into %s in %s", rtName, time.Since(start).Round(time.Second))
	loaded[rtName] = true
}

// helloArchive builds testdata/hello into the image localhost/hello:1 as a
// docker-archive, with go-containerregistry: no daemon, no registry.
func helloArchive(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-o", bin, "../testdata/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building hello: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img := singleFileImage(t, runtime.File{Name: "hello", Content: data, Mode: 0o755}, map[string]struct{}{"5000/tcp": {}})
	tag, _ := name.NewTag("localhost/hello:1")
	archive := filepath.Join(dir, "hello.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	return archive
}

// kubectlBinary is kubectl of the node image's version, from the build cache.
func kubectlBinary(t *testing.T) string {
	t.Helper()
	bins, err := gobuild.Kubernetes(context.Background(), nodeimage.DefaultKubernetesVersion, []string{"kubectl"})
	if err != nil {
		t.Fatal(err)
	}
	return bins["kubectl"]
}

type kubectl struct {
	t          *testing.T
	bin        string
	kubeconfig string
	context    string
}

func (k kubectl) run(args ...string) (string, error) {
	cmd := exec.Command(k.bin, append([]string{"--kubeconfig", k.kubeconfig, "--context", k.context}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (k kubectl) must(args ...string) string {
	k.t.Helper()
	out, err := k.run(args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// eventually retries f until it succeeds or timeout passes.
func eventually(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: gave up after %s: %v", what, timeout, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// A kubeconfig with other entries, as kubectl writes it: create and delete
// must leave it exactly as it was.
const otherKubeconfig = `apiVersion: v1
clusters:
- cluster:
    server: https://example.invalid:6443
  name: other
contexts:
- context:
    cluster: other
    user: other
  name: other
current-context: other
kind: Config
preferences: {}
users:
- name: other
  user:
    token: secret
`

// TestClusterLifecycle is the walkthrough of the project's starting blog
// post: a single-node cluster, the hello app loaded from an archive and
// served through port-forward, a volume claim bound, and a clean delete.
// On runtimes other than the first it checks create, Ready and delete; the
// last of them runs no kube-proxy (kubeProxyMode none), which the default
// CNI must not need, and the one in between takes the blog post's kubeadm
// patch (a v1beta1 extraArgs map in a v1alpha3 config) enabling the
// AlwaysPullImages admission plugin.
func TestClusterLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("creates real clusters")
	}
	rts := testRuntimes()
	for i, rt := range rts {
		full := i == 0
		noProxy := i > 0 && i == len(rts)-1
		blogPatch := i > 0 && !noProxy
		cfg := "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\n"
		switch {
		case noProxy:
			cfg += "networking:\n  kubeProxyMode: none\n"
		case blogPatch:
			b, err := os.ReadFile("../testdata/blog-v1alpha3-patch-single.yaml")
			if err != nil {
				t.Fatal(err)
			}
			cfg = string(b)
		}
		t.Run(rt, func(t *testing.T) {
			ensureNodeImage(t, rt)
			name := "e2e-" + rt
			kc := filepath.Join(t.TempDir(), "config")
			if err := os.WriteFile(kc, []byte(otherKubeconfig), 0o600); err != nil {
				t.Fatal(err)
			}
			freshCluster(t, rt, name, kc)

			start := time.Now()
			args := []string{"--runtime", rt, "-v", "1", "create", "cluster", "--name", name, "--config", "-", "--kubeconfig", kc, "--wait", "5m"}
			if blogPatch {
				// Offline, AlwaysPullImages keeps every new pod, the CNI's
				// too, from starting: the node cannot turn Ready.
				args = args[:len(args)-2]
			}
			code, out, errOut := run(t, cfg, args...)
			if code != 0 {
				t.Fatalf("create: exit %d\n%s\n%s", code, out, errOut)
			}
			t.Logf("create took %s", time.Since(start).Round(time.Second))
			// A second create of the same name fails before touching anything.
			if code, _, errOut := run(t, "", "--runtime", rt, "create", "cluster", "--name", name, "--kubeconfig", kc); code == 0 || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "kinc delete cluster --name "+name) {
				t.Errorf("second create: exit %d: %s", code, errOut)
			}
			k := kubectl{t: t, bin: kubectlBinary(t), kubeconfig: kc, context: "kinc-" + name}
			nodes := k.must("get", "nodes", "--no-headers")
			if !strings.Contains(nodes, name+"-control-plane") || !blogPatch && !strings.Contains(nodes, " Ready") {
				t.Fatalf("node not Ready:\n%s", nodes)
			}
			if blogPatch {
				// The plugin shows in the pods it mutated instead.
				assertAdmissionPlugins(t, k, rt, name)
			} else {
				eventually(t, "coredns Running", 3*time.Minute, func() error {
					out, _ := k.run("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "--no-headers")
					if strings.Count(out, "Running") < 1 {
						return fmt.Errorf("coredns pods:\n%s", out)
					}
					return nil
				})
			}
			if ds := k.must("-n", "kube-system", "get", "daemonsets", "-o", "name"); noProxy == strings.Contains(ds, "daemonset.apps/kube-proxy") {
				t.Errorf("DaemonSets %q with kubeProxyMode none = %v", ds, noProxy)
			}
			if full {
				helloApp(t, k, rt, name)
				volumeClaim(t, k)
			}

			code, _, errOut = run(t, "", "--runtime", rt, "delete", "cluster", "--name", name, "--kubeconfig", kc)
			if code != 0 {
				t.Fatalf("delete: exit %d: %s", code, errOut)
			}
			assertGone(t, rt, name)
			after, _ := os.ReadFile(kc)
			if string(after) != otherKubeconfig {
				t.Errorf("kubeconfig changed by create+delete:\n%s", after)
			}
		})
	}
}

// assertAdmissionPlugins checks that the running kube-apiserver has the
// blog's admission plugins, once (kubeadm's default value replaced, not
// repeated), and that AlwaysPullImages acts: the coredns pods created
// after it started were given imagePullPolicy Always.
func assertAdmissionPlugins(t *testing.T, k kubectl, rt, name string) {
	manifest, err := execIn(rt, name+"-control-plane", "cat", "/etc/kubernetes/manifests/kube-apiserver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(manifest, "--enable-admission-plugins="); n != 1 || !strings.Contains(manifest, "- --enable-admission-plugins=AlwaysPullImages,NodeRestriction\n") {
		t.Errorf("kube-apiserver manifest has %d --enable-admission-plugins flags, want the blog's once:\n%s", n, manifest)
	}
	eventually(t, "coredns pods mutated by AlwaysPullImages", 2*time.Minute, func() error {
		out, err := k.run("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "jsonpath={.items[*].spec.containers[*].imagePullPolicy}")
		policies := strings.Fields(out)
		if err != nil || len(policies) == 0 {
			return fmt.Errorf("no coredns pods yet (%v): %s", err, out)
		}
		for _, p := range policies {
			if p != "Always" {
				return fmt.Errorf("coredns pull policies %q, want all Always", out)
			}
		}
		return nil
	})
}

func helloApp(t *testing.T, k kubectl, rt, name string) {
	code, _, errOut := run(t, "", "--runtime", rt, "load", "image-archive", helloArchive(t), "--name", name)
	if code != 0 {
		t.Fatalf("load image-archive: exit %d: %s", code, errOut)
	}
	k.must("create", "deployment", "test-deploy", "--image", "localhost/hello:1")
	k.must("rollout", "status", "deployment/test-deploy", "--timeout", "3m")

	pf := exec.Command(k.bin, "--kubeconfig", k.kubeconfig, "--context", k.context, "port-forward", "deployment/test-deploy", "15000:5000")
	var pfOut bytes.Buffer
	pf.Stdout, pf.Stderr = &pfOut, &pfOut
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pf.Process.Kill(); pf.Wait() }()
	pod := strings.TrimSpace(k.must("get", "pods", "-l", "app=test-deploy", "-o", "jsonpath={.items[0].metadata.name}"))
	eventually(t, "hello through port-forward", time.Minute, func() error {
		resp, err := http.Get("http://127.0.0.1:15000/")
		if err != nil {
			return fmt.Errorf("%v (port-forward: %s)", err, pfOut.String())
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		want := "<h1>Path / served from host : " + pod + "</h1>"
		if !strings.Contains(string(body), want) {
			return fmt.Errorf("body %q, want %q", body, want)
		}
		return nil
	})
}

func volumeClaim(t *testing.T, k kubectl) {
	const pvc = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: e2e-claim
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 16Mi
---
apiVersion: v1
kind: Pod
metadata:
  name: e2e-claim-user
spec:
  containers:
  - name: hello
    image: localhost/hello:1
    volumeMounts:
    - {name: data, mountPath: /data}
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: e2e-claim
`
	f := filepath.Join(t.TempDir(), "pvc.yaml")
	os.WriteFile(f, []byte(pvc), 0o644)
	k.must("apply", "-f", f)
	eventually(t, "claim Bound", 2*time.Minute, func() error {
		out, _ := k.run("get", "pvc", "e2e-claim", "-o", "jsonpath={.status.phase}")
		if out != "Bound" {
			return fmt.Errorf("claim is %q", out)
		}
		return nil
	})
}

// assertGone checks that nothing of the cluster is left in the runtime.
func assertGone(t *testing.T, rtName, name string) {
	t.Helper()
	ctx := context.Background()
	rt := openTestRuntime(t, rtName)
	left, err := rt.ListNodes(ctx, map[string]string{runtime.LabelCluster: name})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("containers left after delete: %v", left)
	}
	// Ensuring the network again must create it anew: delete it right away.
	if err := rt.DeleteNetwork(ctx, "kinc-"+name); err == nil {
		t.Errorf("network kinc-%s was left after delete", name)
	}
}

// A create that fails half-way (kubeadm init refuses the version a patch
// sets) leaves no container, network or kubeconfig entry behind.
func TestCreateFailureLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("creates real containers")
	}
	rt := testRuntimes()[0]
	ensureNodeImage(t, rt)
	const cfg = `apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
kubeadmConfigPatchesJSON6902:
- group: kubeadm.k8s.io
  version: v1beta4
  kind: ClusterConfiguration
  patch: |
    - op: replace
      path: /kubernetesVersion
      value: v1.20.0
`
	kc := filepath.Join(t.TempDir(), "config")
	os.WriteFile(kc, []byte(otherKubeconfig), 0o600)
	run(t, "", "--runtime", rt, "delete", "cluster", "--name", "e2e-fail") // an aborted earlier run's
	code, _, errOut := run(t, cfg, "--runtime", rt, "create", "cluster", "--name", "e2e-fail", "--config", "-", "--kubeconfig", kc)
	if code == 0 {
		run(t, "", "--runtime", rt, "delete", "cluster", "--name", "e2e-fail")
		t.Fatal("create succeeded with a broken kubeadm patch")
	}
	for _, want := range []string{"starting control-plane", "kubeadm init", "v1.20.0", "--retain"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error lacks %q:\n%s", want, errOut)
		}
	}
	assertGone(t, rt, "e2e-fail")
	if after, _ := os.ReadFile(kc); string(after) != otherKubeconfig {
		t.Errorf("kubeconfig changed:\n%s", after)
	}
}

// A host port in use fails the create before anything is made.
func TestCreatePortInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a container runtime")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	cfg := fmt.Sprintf("apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nnetworking:\n  apiServerPort: %d\n", port)
	for _, rt := range testRuntimes() {
		t.Run(rt, func(t *testing.T) {
			run(t, "", "--runtime", rt, "delete", "cluster", "--name", "port-in-use") // an aborted earlier run's
			code, _, errOut := run(t, cfg, "--runtime", rt, "create", "cluster", "--name", "port-in-use", "--config", "-")
			if code == 0 || !strings.Contains(errOut, fmt.Sprintf("127.0.0.1:%d/tcp is in use", port)) {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			assertGone(t, rt, "port-in-use")
		})
	}
}
