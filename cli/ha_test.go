package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHACluster is the blog post's HA cluster (three control planes and a
// worker behind a load balancer) on the first test runtime: the kubeconfig
// points at the load balancer, the API survives losing a control plane,
// and the hello app runs on the worker.
func TestHACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("creates real clusters")
	}
	rt := testRuntimes()[0]
	ensureNodeImage(t, rt)
	name := "e2e-ha"
	kc := filepath.Join(t.TempDir(), "config")
	freshCluster(t, rt, name, kc)
	start := time.Now()
	code, out, errOut := run(t, "", "--runtime", rt, "-v", "1", "create", "cluster", "--name", name,
		"--config", "../testdata/blog-v1alpha2-ha.yaml", "--kubeconfig", kc, "--wait", "8m")
	if code != 0 {
		t.Fatalf("create: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("HA create --wait took %s", time.Since(start).Round(time.Second))
	k := kubectl{t: t, bin: kubectlBinary(t), kubeconfig: kc, context: "kinc-" + name}
	nodes := k.must("get", "nodes", "--no-headers")
	if n := strings.Count(nodes, " Ready"); n != 4 {
		t.Fatalf("%d nodes Ready, want 4:\n%s", n, nodes)
	}

	// The kubeconfig must name the load balancer's host port, not a node's.
	ctx := context.Background()
	r := openTestRuntime(t, rt)
	lbst, err := r.InspectNode(ctx, name+"-external-load-balancer")
	if err != nil {
		t.Fatal(err)
	}
	server := strings.TrimSpace(k.must("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"))
	wantServer := ""
	for _, p := range lbst.Ports {
		if p.ContainerPort == 6443 {
			wantServer = fmt.Sprintf("https://127.0.0.1:%d", p.HostPort)
		}
	}
	if server != wantServer {
		t.Errorf("kubeconfig server %q, want the load balancer's %q", server, wantServer)
	}

	helloApp(t, k, rt, name)
	pods := k.must("get", "pods", "-l", "app=test-deploy", "-o", "wide", "--no-headers")
	if !strings.Contains(pods, name+"-worker") {
		t.Errorf("hello does not run on the worker:\n%s", pods)
	}

	// Losing a control plane (not the first, which holds nothing special
	// once joined) leaves the API answering through the load balancer.
	if err := r.StopNode(ctx, name+"-control-plane2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "API through the load balancer with a control plane down", time.Minute, func() error {
		for i := 0; i < 5; i++ { // several requests: round-robin must skip the dead one
			if out, err := k.run("get", "--raw", "/readyz"); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
		}
		return nil
	})

	if code, _, errOut := run(t, "", "--runtime", rt, "delete", "cluster", "--name", name, "--kubeconfig", kc); code != 0 {
		t.Fatalf("delete: exit %d: %s", code, errOut)
	}
	assertGone(t, rt, name)
	if data, _ := os.ReadFile(kc); strings.Contains(string(data), "kinc-"+name) {
		t.Errorf("kubeconfig still names the cluster:\n%s", data)
	}
}
