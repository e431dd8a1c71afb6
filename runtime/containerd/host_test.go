package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd"

	"github.com/kinc-dev/kinc/runtime"
	"github.com/kinc-dev/kinc/runtime/runtimetest"
)

// These tests look past the Runtime interface, at the host: what the
// conformance suite cannot see (leases, caches, iptables rules, files) must
// be gone after a delete.

func newHostTestRuntime(t *testing.T) (*Runtime, string) {
	t.Helper()
	runtimetest.Wanted(t, "containerd")
	ctx := context.Background()
	r, err := New(ctx, WithNamespace("kinc-hosttest"))
	if err != nil {
		t.Fatalf("containerd must be running for this test (start it, or use -short): %v", err)
	}
	t.Cleanup(func() { r.Close() })
	ref, archive := runtimetest.TestbinArchive(t)
	runtimetest.EnsureImage(t, r, ref, archive)
	return r, ref
}

func TestDeleteLeavesNothingOnTheHost(t *testing.T) {
	r, img := newHostTestRuntime(t)
	ctx := context.Background()
	netName := fmt.Sprintf("leak-%d", os.Getpid())
	n, err := r.EnsureNetwork(ctx, runtime.NetworkSpec{Name: netName, IPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNetwork(context.Background(), netName) })
	if n.SubnetV6 == "" {
		t.Errorf("IPv6 network has no IPv6 subnet: %+v", n)
	}
	ns, _ := r.state.readNetwork(netName)

	// Three nodes at once: addresses must not clash.
	names := []string{netName + "-a", netName + "-b", netName + "-c"}
	var wg sync.WaitGroup
	statuses := make([]runtime.NodeStatus, len(names))
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Add(1)
		go func(i int, name string) {
			defer wg.Done()
			statuses[i], errs[i] = r.CreateNode(ctx, runtime.NodeSpec{
				Name: name, Image: img, Network: netName,
				Ports: []runtime.PortMapping{{ListenAddress: "127.0.0.1", ContainerPort: 8080}},
			})
		}(i, name)
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, name := range names {
			_ = r.DeleteNode(context.Background(), name)
		}
	})
	seen := map[string]bool{}
	for i, st := range statuses {
		if errs[i] != nil {
			t.Fatalf("CreateNode(%s): %v", names[i], errs[i])
		}
		if seen[st.IPv4] || st.IPv4 == "" || st.IPv6 == "" {
			t.Errorf("node %s got addresses %q, %q (taken: %v)", st.Name, st.IPv4, st.IPv6, seen)
		}
		seen[st.IPv4] = true
		if a, err := netip.ParseAddr(st.IPv6); err != nil || !netip.MustParsePrefix(n.SubnetV6).Contains(a) {
			t.Errorf("node %s IPv6 %q is not in %s", st.Name, st.IPv6, n.SubnetV6)
		}
	}
	// Every node reaches the others by name, over IPv6 too.
	var out strings.Builder
	err = r.Exec(ctx, names[0], runtime.ExecSpec{Cmd: []string{"/testbin", "dial", "[" + statuses[1].IPv6 + "]:8080"}, Stdout: &out})
	if err != nil || !strings.Contains(out.String(), "kinc-testbin") {
		t.Errorf("dial over IPv6: %q, %v", out.String(), err)
	}
	out.Reset()
	err = r.Exec(ctx, names[2], runtime.ExecSpec{Cmd: []string{"/testbin", "dial", names[0] + ":8080"}, Stdout: &out})
	if err != nil || !strings.Contains(out.String(), "kinc-testbin") {
		t.Errorf("dial by name: %q, %v", out.String(), err)
	}

	// The checks below must see what a live node leaves, or they prove nothing.
	if iptablesMentioning(t, r.cniID(names[0])) == "" {
		t.Fatal("no iptables rule names a running node: the leak check is blind")
	}
	if leases, _ := filepath.Glob(filepath.Join(cniLeaseDir, ns.CNIName, statuses[0].IPv4)); len(leases) != 1 {
		t.Fatalf("no host-local lease for a running node (%s): the leak check is blind", statuses[0].IPv4)
	}

	for _, name := range names {
		if err := r.DeleteNode(ctx, name); err != nil {
			t.Fatalf("DeleteNode(%s): %v", name, err)
		}
	}
	leases, _ := filepath.Glob(filepath.Join(cniLeaseDir, ns.CNIName, "*"))
	for _, l := range leases {
		if base := filepath.Base(l); base != "lock" && !strings.HasPrefix(base, "last_reserved_ip") {
			t.Errorf("host-local lease left after delete: %s", l)
		}
	}
	for _, name := range names {
		id := r.cniID(name)
		if cached, _ := filepath.Glob("/var/lib/cni/results/*" + id + "*"); len(cached) > 0 {
			t.Errorf("CNI result cache left for %s: %v", name, cached)
		}
		if rules := iptablesMentioning(t, id); rules != "" {
			t.Errorf("iptables rules left for %s:\n%s", name, rules)
		}
		if _, err := os.Stat(r.state.nodeDir(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("state dir of %s left: %v", name, err)
		}
		if _, err := r.client.SnapshotService(r.snapshotter).Stat(r.ctx(ctx), name); err == nil {
			t.Errorf("snapshot of %s left", name)
		}
		if _, err := os.Stat(r.netnsPin(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("network namespace pin of %s left: %v", name, err)
		}
	}
	if err := r.DeleteNetwork(ctx, netName); err != nil {
		t.Fatalf("DeleteNetwork: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cniLeaseDir, ns.CNIName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("host-local folder left after DeleteNetwork: %v", err)
	}
	if _, err := os.Stat("/sys/class/net/" + ns.Bridge); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bridge %s left after DeleteNetwork: %v", ns.Bridge, err)
	}
}

// iptablesMentioning returns the rules whose comment names a CNI id.
func iptablesMentioning(t *testing.T, id string) string {
	t.Helper()
	var found []string
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(cmd).Output()
		if err != nil {
			t.Logf("%s: %v", cmd, err)
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, `"`+id+`"`) || strings.Contains(line, `id: \"`+id+`\"`) {
				found = append(found, line)
			}
		}
	}
	return strings.Join(found, "\n")
}

// A systemd node halts on SIGRTMIN+3 well before the kill timeout and comes
// back on the same address with systemd running again.
func TestSystemdNodeRestart(t *testing.T) {
	r, _ := newHostTestRuntime(t)
	ref, archive := runtimetest.SystemdArchive(t)
	runtimetest.EnsureImage(t, r, ref, archive)
	ctx := context.Background()
	netName := fmt.Sprintf("sysd-%d", os.Getpid())
	if _, err := r.EnsureNetwork(ctx, runtime.NetworkSpec{Name: netName}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNetwork(context.Background(), netName) })
	name := netName + "-node"
	st, err := r.CreateNode(ctx, runtime.NodeSpec{Name: name, Image: ref, Network: netName})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNode(context.Background(), name) })
	if state, err := runtimetest.WaitSystemd(r, name, 2*time.Minute); err != nil {
		t.Fatalf("systemd: %v (%s)", err, state)
	}
	start := time.Now()
	if err := r.StopNode(ctx, name); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= stopTimeout {
		t.Errorf("StopNode took %s: systemd did not halt on SIGRTMIN+3", took)
	} else {
		t.Logf("systemd halted in %s", took)
	}
	if err := r.StartNode(ctx, name); err != nil {
		t.Fatal(err)
	}
	if state, err := runtimetest.WaitSystemd(r, name, 2*time.Minute); err != nil {
		t.Fatalf("systemd after restart: %v (%s)", err, state)
	}
	again, err := r.InspectNode(ctx, name)
	if err != nil || again.IPv4 != st.IPv4 {
		t.Errorf("after restart: %+v, %v; want IPv4 %s", again, err, st.IPv4)
	}
}

// A node runs containers of its own, with cgroup limits: what kubelet does
// with every pod. This needs every host controller mounted in the node.
func TestNestedContainers(t *testing.T) {
	r, testbin := newHostTestRuntime(t)
	ref, archive := runtimetest.SystemdArchive(t)
	runtimetest.EnsureImage(t, r, ref, archive)
	ctx := context.Background()
	name := fmt.Sprintf("nested-%d", os.Getpid())
	if _, err := r.CreateNode(ctx, runtime.NodeSpec{Name: name, Image: ref}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNode(context.Background(), name) })
	if state, err := runtimetest.WaitSystemd(r, name, 2*time.Minute); err != nil {
		t.Fatalf("systemd: %v (%s)", err, state)
	}
	_, path := runtimetest.TestbinArchive(t)
	tarball, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CopyTo(ctx, name, "/root", runtime.TarFiles(runtime.File{Name: "testbin.tar", Content: tarball})); err != nil {
		t.Fatal(err)
	}
	sh := func(script string) string {
		t.Helper()
		var out bytes.Buffer
		err := r.Exec(ctx, name, runtime.ExecSpec{Cmd: []string{"sh", "-c", script}, Stdout: &out})
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return out.String()
	}
	// Host controllers are mounted by the runtime as the host has them, not
	// guessed by systemd.
	var hostControllers []string
	for _, c := range []string{"cpu", "cpuacct", "memory", "pids", "devices"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + c + "/tasks"); err == nil {
			hostControllers = append(hostControllers, c)
		}
	}
	for _, c := range hostControllers {
		sh("test -f /sys/fs/cgroup/" + c + "/tasks")
	}
	sh("systemctl is-active containerd || systemctl start containerd")
	sh("ctr -n k8s.io images import /root/testbin.tar >/dev/null")
	out := sh("ctr -n k8s.io run --rm --memory-limit 100000000 --cpus 0.5 " + testbin + " kinc-nested /testbin echo nested-hello")
	if out != "nested-hello\n" {
		t.Errorf("nested container printed %q", out)
	}
}

// A node removed behind kinc's back (ctr rm) does not pin its network: its
// lease is released and the network can go.
func TestStaleNodeDoesNotPinNetwork(t *testing.T) {
	r, img := newHostTestRuntime(t)
	ctx := context.Background()
	netName := fmt.Sprintf("stale-%d", os.Getpid())
	if _, err := r.EnsureNetwork(ctx, runtime.NetworkSpec{Name: netName}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNetwork(context.Background(), netName) })
	name := netName + "-node"
	st, err := r.CreateNode(ctx, runtime.NodeSpec{Name: name, Image: img, Network: netName})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNode(context.Background(), name) })
	if err := r.DeleteNetwork(ctx, netName); err == nil {
		t.Fatal("DeleteNetwork succeeded while a node uses the network")
	}
	// What `ctr task kill; ctr task rm; ctr container rm` leaves behind.
	c, err := r.client.LoadContainer(r.ctx(ctx), name)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := c.Task(r.ctx(ctx), nil); err == nil {
		if _, err := task.Delete(r.ctx(ctx), containerd.WithProcessKill); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Delete(r.ctx(ctx), containerd.WithSnapshotCleanup); err != nil {
		t.Fatal(err)
	}
	ns, _ := r.state.readNetwork(netName)
	if err := r.DeleteNetwork(ctx, netName); err != nil {
		t.Fatalf("DeleteNetwork with only a stale node: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cniLeaseDir, ns.CNIName, st.IPv4)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lease of the stale node left: %v", err)
	}
	if _, err := os.Stat(r.state.nodeDir(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state of the stale node left: %v", err)
	}
	if rules := iptablesMentioning(t, r.cniID(name)); rules != "" {
		t.Errorf("iptables rules of the stale node left:\n%s", rules)
	}
	if _, err := os.Stat(r.netnsPin(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("network namespace pin of the stale node left: %v", err)
	}
}

// A node whose PID 1 died on its own starts again on its address, with its
// published port, and its old attachment is released first.
func TestStartAfterCrash(t *testing.T) {
	r, img := newHostTestRuntime(t)
	ctx := context.Background()
	netName := fmt.Sprintf("crash-%d", os.Getpid())
	if _, err := r.EnsureNetwork(ctx, runtime.NetworkSpec{Name: netName}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNetwork(context.Background(), netName) })
	name := netName + "-node"
	st, err := r.CreateNode(ctx, runtime.NodeSpec{Name: name, Image: img, Network: netName,
		Ports: []runtime.PortMapping{{ListenAddress: "127.0.0.1", ContainerPort: 8080}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNode(context.Background(), name) })
	c, err := r.client.LoadContainer(r.ctx(ctx), name)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(r.ctx(ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	exited, err := task.Wait(r.ctx(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(r.ctx(ctx), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if got, _ := r.InspectNode(ctx, name); got.State != runtime.StateStopped {
		t.Errorf("after its PID 1 died the node is %q, want stopped", got.State)
	}
	if err := r.StartNode(ctx, name); err != nil {
		t.Fatalf("StartNode after a crash: %v", err)
	}
	again, err := r.InspectNode(ctx, name)
	if err != nil || again.State != runtime.StateRunning || again.IPv4 != st.IPv4 {
		t.Fatalf("after restart: %+v, %v; want running on %s", again, err, st.IPv4)
	}
	port := again.Ports[0].HostPort
	var out bytes.Buffer
	for i := 0; i < 40; i++ {
		out.Reset()
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			_, _ = out.ReadFrom(c)
			c.Close()
			if strings.HasPrefix(out.String(), "kinc-testbin") {
				break
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !strings.HasPrefix(out.String(), "kinc-testbin") {
		t.Errorf("published port %d after restart answered %q", port, out.String())
	}
	// One masquerade chain for the node, not one per start.
	if rules := iptablesMentioning(t, r.cniID(name)); strings.Count(rules, "-j MASQUERADE") != 1 {
		t.Errorf("masquerade rules for the node after a crash and restart:\n%s", rules)
	}
}

// Without the CNI plugins, creating a node says which ones and where.
func TestMissingPluginsHint(t *testing.T) {
	r, img := newHostTestRuntime(t)
	ctx := context.Background()
	empty := t.TempDir()
	bare, err := New(ctx, WithNamespace("kinc-hosttest"), WithCNIBinDirs(empty))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bare.Close() })
	netName := fmt.Sprintf("noplug-%d", os.Getpid())
	if _, err := r.EnsureNetwork(ctx, runtime.NetworkSpec{Name: netName}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.DeleteNetwork(context.Background(), netName) })
	name := netName + "-node"
	_, err = bare.CreateNode(ctx, runtime.NodeSpec{Name: name, Image: img, Network: netName})
	if err == nil {
		_ = r.DeleteNode(ctx, name)
		t.Fatal("CreateNode succeeded without CNI plugins")
	}
	if !strings.Contains(err.Error(), "containernetworking-plugins") || !strings.Contains(err.Error(), empty) {
		t.Errorf("error gives no hint: %v", err)
	}
	// The failed create cleaned up after itself.
	if _, err := r.InspectNode(ctx, name); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("after a failed create, InspectNode = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(r.netnsPin(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin left after a failed create: %v", err)
	}
}
