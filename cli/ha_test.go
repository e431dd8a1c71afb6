package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/cluster/kubeconfig"
	"github.com/kinc-dev/kinc/lb"
	"github.com/kinc-dev/kinc/runtime"
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
	// Create lowers the other nodes' CPU weight while init runs: each must
	// have it back, the same as the load balancer, which it never touches.
	weight := func(container string) string {
		out, err := execIn(rt, container, "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight")
		if err != nil {
			t.Fatalf("reading the CPU weight of %s: %v", container, err)
		}
		return strings.TrimSpace(out)
	}
	lbWeight := weight(lbst.Name)
	for _, n := range []string{"-control-plane", "-control-plane2", "-control-plane3", "-worker"} {
		if w := weight(name + n); w != lbWeight {
			t.Errorf("CPU weight of %s%s after create: %s, want the load balancer's %s", name, n, w, lbWeight)
		}
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

	controlPlaneComesAndGoes(t, k, rt, name)

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

	// With that control plane still down: its container may report no
	// address, and the new worker must not take it.
	workerComesAndGoes(t, k, r, rt, name)

	// With control-plane2 down, removing control-plane3 would leave etcd
	// one member up of two: refused, and nothing touched.
	cp3 := name + "-control-plane3"
	code, _, errOut = run(t, "", "--runtime", rt, "delete", "node", cp3, "--name", name)
	if code == 0 || !strings.Contains(errOut, "majority") {
		t.Errorf("delete node %s with control-plane2 down: exit %d, want a refusal naming the majority etcd needs:\n%s", cp3, code, errOut)
	}
	if st, err := r.InspectNode(ctx, cp3); err != nil || st.State != runtime.StateRunning {
		t.Errorf("%s after the refused delete: %+v, %v; want it running", cp3, st, err)
	}
	if members := etcdMembers(t, rt, name+"-control-plane"); len(members) != 3 {
		t.Errorf("etcd members after the refused delete: %v, want 3", members)
	}

	if code, _, errOut := run(t, "", "--runtime", rt, "delete", "cluster", "--name", name, "--kubeconfig", kc); code != 0 {
		t.Fatalf("delete: exit %d: %s", code, errOut)
	}
	assertGone(t, rt, name)
	if data, _ := os.ReadFile(kc); strings.Contains(string(data), "kinc-"+name) {
		t.Errorf("kubeconfig still names the cluster:\n%s", data)
	}
}

// controlPlaneComesAndGoes removes control-plane3 and adds it back while
// requests go through the load balancer all along, then reloads the load
// balancer on its own: a reload must neither refuse a new connection nor
// cut an established one.
func controlPlaneComesAndGoes(t *testing.T, k kubectl, rt, name string) {
	lbName, cp3 := name+"-external-load-balancer", name+"-control-plane3"
	lbConfig := func() string {
		t.Helper()
		out, err := execIn(rt, lbName, "cat", lb.ConfigPath)
		if err != nil {
			t.Fatalf("reading the load balancer's config: %v", err)
		}
		return out
	}
	names := func(s string) bool { return strings.Contains(s, cp3+" ") || strings.Contains(s, cp3+"\n") }

	probe := startProbe(t, k, true)
	start := time.Now()
	if code, out, errOut := run(t, "", "--runtime", rt, "-v", "1", "delete", "node", cp3, "--name", name); code != 0 {
		t.Fatalf("delete node: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("delete node (control plane) took %s", time.Since(start).Round(100*time.Millisecond))
	probe.expectNoFailure(t, "deleting "+cp3)
	if cfg := lbConfig(); names(cfg) {
		t.Errorf("the load balancer still names %s:\n%s", cp3, cfg)
	}
	if nodes := k.must("get", "nodes", "-o", "name"); names(nodes) {
		t.Errorf("Kubernetes still lists %s:\n%s", cp3, nodes)
	}
	if members := etcdMembers(t, rt, name+"-control-plane"); len(members) != 2 {
		t.Errorf("etcd members after the delete: %v, want 2", members)
	}

	probe = startProbe(t, k, true)
	start = time.Now()
	code, out, errOut := run(t, "", "--runtime", rt, "-v", "1", "create", "node", "--role", "control-plane", "--name", name, "--wait", "3m")
	if code != 0 {
		t.Fatalf("create node: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("create node --role control-plane --wait took %s", time.Since(start).Round(100*time.Millisecond))
	probe.expectNoFailure(t, "adding "+cp3)
	if got := strings.TrimSpace(out); got != cp3 {
		t.Errorf("create node named %q, want the free name %q", got, cp3)
	}
	if ready := k.must("get", "node", cp3, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); ready != "True" {
		t.Errorf("%s Ready = %q", cp3, ready)
	}
	if cfg := lbConfig(); !names(cfg) {
		t.Errorf("the load balancer does not name %s:\n%s", cp3, cfg)
	}
	// Three members again, not four: the old one left with its node.
	if members := etcdMembers(t, rt, name+"-control-plane"); len(members) != 3 || !slices.Contains(members, cp3) {
		t.Errorf("etcd members after the add: %v, want 3 with %s", members, cp3)
	}

	// The reloads alone, without etcd changing under the API servers: new
	// connections and one kept-alive connection, through three reloads.
	workers := func() []string {
		out, _ := execIn(rt, lbName, "sh", "-c", `for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = haproxy ] && echo ${p#/proc/}; done`)
		return strings.Fields(out)
	}
	before := workers()
	fresh, kept := startProbe(t, k, true), startProbe(t, k, false)
	time.Sleep(time.Second)
	for i := 0; i < 3; i++ {
		if out, err := execIn(rt, lbName, lb.ReloadCommand()...); err != nil {
			t.Fatalf("reloading haproxy: %v: %s", err, out)
		}
		time.Sleep(time.Second)
	}
	fresh.expectNoFailure(t, "reloads, new connections")
	kept.expectNoFailure(t, "reloads, one kept-alive connection")
	if kept.conns != 1 {
		t.Errorf("the kept-alive connection was opened %d times across the reloads, want once", kept.conns)
	}
	if after := workers(); !slices.ContainsFunc(after, func(p string) bool { return !slices.Contains(before, p) }) {
		t.Errorf("no new haproxy process after the reloads (before %v, after %v)", before, after)
	}
}

// workerComesAndGoes adds a worker, which must take the next free name
// and an address of its own, and removes it again.
func workerComesAndGoes(t *testing.T, k kubectl, r runtime.Runtime, rt, name string) {
	worker2 := name + "-worker2"
	start := time.Now()
	code, out, errOut := run(t, "", "--runtime", rt, "-v", "1", "create", "node", "--name", name, "--wait", "3m")
	if code != 0 {
		t.Fatalf("create node: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("create node (worker) --wait took %s", time.Since(start).Round(100*time.Millisecond))
	if got := strings.TrimSpace(out); got != worker2 {
		t.Errorf("create node named %q, want %q", got, worker2)
	}
	if ready := k.must("get", "node", worker2, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`); ready != "True" {
		t.Errorf("%s Ready = %q", worker2, ready)
	}
	ips := strings.Fields(k.must("get", "nodes", "-o", `jsonpath={.items[*].status.addresses[?(@.type=="InternalIP")].address}`))
	slices.Sort(ips)
	if len(slices.Compact(slices.Clone(ips))) != len(ips) {
		t.Errorf("two nodes share an address: %v", ips)
	}

	start = time.Now()
	if code, out, errOut := run(t, "", "--runtime", rt, "-v", "1", "delete", "node", worker2, "--name", name); code != 0 {
		t.Fatalf("delete node: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("delete node (worker) took %s", time.Since(start).Round(100*time.Millisecond))
	if nodes := k.must("get", "nodes", "-o", "name"); strings.Contains(nodes, worker2) {
		t.Errorf("Kubernetes still lists %s:\n%s", worker2, nodes)
	}
	if _, err := r.InspectNode(context.Background(), worker2); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("container %s after delete node: %v, want not found", worker2, err)
	}
}

// etcdMembers lists the etcd members' names, asking the etcd of node.
func etcdMembers(t *testing.T, rt, node string) []string {
	t.Helper()
	const pki = "/etc/kubernetes/pki/etcd/"
	out, err := execIn(rt, node, "sh", "-c", `crictl exec $(crictl ps -q --name '^etcd$' --state running | head -n 1) /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=`+pki+`ca.crt --cert=`+pki+`healthcheck-client.crt --key=`+pki+`healthcheck-client.key member list -w simple`)
	if err != nil {
		t.Fatalf("listing etcd members: %v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Split(line, ", "); len(f) > 2 {
			names = append(names, f[2])
		}
	}
	return names
}

// probe asks the API's /readyz through the load balancer, as the test
// kubeconfig does, every 25ms until stopped: each time on a new
// connection, or always on the one it keeps alive.
type probe struct {
	stop  chan struct{}
	done  chan struct{}
	ok    int
	fails []string
	conns int // connections opened
}

func startProbe(t *testing.T, k kubectl, fresh bool) *probe {
	t.Helper()
	data, err := os.ReadFile(k.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kubeconfig.FromAdmin(data, strings.TrimPrefix(k.context, "kinc-"), "")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(e.ClientCertificateData, e.ClientKeyData)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(e.CertificateAuthorityData)
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}},
		DisableKeepAlives: fresh,
		MaxConnsPerHost:   1,
		IdleConnTimeout:   time.Hour,
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	p := &probe{stop: make(chan struct{}), done: make(chan struct{})}
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			p.conns++
		}
	}}
	go func() {
		defer close(p.done)
		defer tr.CloseIdleConnections()
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", e.Server+"/readyz", nil)
			resp, err := client.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s: %s", resp.Status, body)
				}
			}
			if err != nil {
				p.fails = append(p.fails, time.Now().Format("15:04:05.000 ")+err.Error())
				continue
			}
			p.ok++
		}
	}()
	return p
}

// expectNoFailure stops the probe and fails the test if any request failed.
func (p *probe) expectNoFailure(t *testing.T, during string) {
	t.Helper()
	close(p.stop)
	<-p.done
	t.Logf("%s: %d requests through the load balancer, %d failed, %d connections", during, p.ok+len(p.fails), len(p.fails), p.conns)
	if p.ok == 0 {
		t.Errorf("%s: no request went through", during)
	}
	if len(p.fails) > 0 {
		t.Errorf("%s: %d of %d requests failed:\n%s", during, len(p.fails), p.ok+len(p.fails), strings.Join(p.fails, "\n"))
	}
}
