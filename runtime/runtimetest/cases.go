package runtimetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/runtime"
)

// Run checks every promise of runtime.Runtime against the backend called
// backend ("podman", "docker", "containerd"), one subtest each.
func Run(t *testing.T, backend string, newRuntime NewRuntime) {
	Wanted(t, backend)
	h := newHarness(t, backend, newRuntime)
	cases := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Info", testInfo},
		{"NotFound", testNotFound},
		{"AlreadyExists", testAlreadyExists},
		{"Exec", testExec},
		{"Copy", testCopy},
		{"Logs", testLogs},
		{"BindMounts", testMounts},
		{"ListByLabel", testList},
		{"NetworkByIPAndName", testNetwork},
		{"DualStackNetwork", testDualStack},
		{"PublishedPort", testPublishedPort},
		{"FixedIPAndPortAcrossRestart", testRestart},
		{"CPUShares", testCPUShares},
		{"DeleteLeavesNothing", testDelete},
		{"ImageSaveLoad", testImages},
		{"SystemdRuns", testSystemd},
		{"DeletingANodeSparesOthers", testIsolation},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, h) })
	}
}

func testInfo(t *testing.T, h *harness) {
	info, err := h.rt.Info(context.Background())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name != h.backend {
		t.Errorf("Info.Name = %q, want %q", info.Name, h.backend)
	}
	if info.Version == "" || info.Socket == "" {
		t.Errorf("Info lacks version or socket: %+v", info)
	}
	if info.CgroupVersion != 1 && info.CgroupVersion != 2 {
		t.Errorf("Info.CgroupVersion = %d, want 1 or 2", info.CgroupVersion)
	}
	if info.CgroupDriver != "cgroupfs" && info.CgroupDriver != "systemd" {
		t.Errorf("Info.CgroupDriver = %q, want cgroupfs or systemd", info.CgroupDriver)
	}
	t.Logf("%+v", info)
}

func testNotFound(t *testing.T, h *harness) {
	ctx := context.Background()
	missing := h.name("missing")
	calls := map[string]func() error{
		"InspectNode":   func() error { _, err := h.rt.InspectNode(ctx, missing); return err },
		"StartNode":     func() error { return h.rt.StartNode(ctx, missing) },
		"StopNode":      func() error { return h.rt.StopNode(ctx, missing) },
		"DeleteNode":    func() error { return h.rt.DeleteNode(ctx, missing) },
		"Exec":          func() error { return h.rt.Exec(ctx, missing, runtime.ExecSpec{Cmd: []string{"true"}}) },
		"CopyTo":        func() error { return h.rt.CopyTo(ctx, missing, "/", runtime.TarFiles(runtime.File{Name: "x"})) },
		"CopyFrom":      func() error { rc, err := h.rt.CopyFrom(ctx, missing, "/etc"); closeIf(rc); return err },
		"Logs":          func() error { return h.rt.Logs(ctx, missing, io.Discard) },
		"DeleteNetwork": func() error { return h.rt.DeleteNetwork(ctx, missing) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, runtime.ErrNotFound) {
				t.Errorf("%s on a missing object = %v, want ErrNotFound", name, err)
			}
		})
	}
	t.Run("ImageExists", func(t *testing.T) {
		ok, err := h.rt.ImageExists(ctx, "localhost/kinc-test/missing:none")
		if ok || err != nil {
			t.Errorf("ImageExists(missing) = %v, %v; want false, nil", ok, err)
		}
	})
	t.Run("CopyFromMissingPath", func(t *testing.T) {
		n := h.create(t, h.spec("nopath"))
		rc, err := h.rt.CopyFrom(ctx, n.Name, "/no/such/file")
		if err == nil {
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("CopyFrom(missing path) = %v, want ErrNotFound", err)
		}
	})
}

func closeIf(rc io.ReadCloser) {
	if rc != nil {
		rc.Close()
	}
}

func testAlreadyExists(t *testing.T, h *harness) {
	spec := h.spec("clash")
	h.create(t, spec)
	_, err := h.rt.CreateNode(context.Background(), spec)
	if !errors.Is(err, runtime.ErrAlreadyExists) {
		t.Fatalf("second CreateNode(%s) = %v, want ErrAlreadyExists", spec.Name, err)
	}
	// The failed create must not have harmed the first container.
	st, err := h.rt.InspectNode(context.Background(), spec.Name)
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("first node after a clash: %+v, %v; want running", st, err)
	}
	if out := h.exec(t, spec.Name, "/testbin", "echo", "alive"); out != "alive\n" {
		t.Errorf("first node after a clash: exec says %q", out)
	}

	t.Run("Concurrent", func(t *testing.T) {
		spec := h.spec("race")
		t.Cleanup(func() { h.deleteQuietly(t, spec.Name) })
		const n = 3
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() { _, err := h.rt.CreateNode(context.Background(), spec); errs <- err }()
		}
		won := 0
		for i := 0; i < n; i++ {
			err := <-errs
			switch {
			case err == nil:
				won++
			case !errors.Is(err, runtime.ErrAlreadyExists):
				t.Errorf("a losing CreateNode = %v, want ErrAlreadyExists", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent creates of one name succeeded, want 1", won, n)
		}
		// The losers must not have removed the winner or its /var.
		h.exec(t, spec.Name, "/testbin", "write", "/var/still-there", "yes")
		if got := h.exec(t, spec.Name, "/testbin", "cat", "/var/still-there"); got != "yes" {
			t.Errorf("winner's /var: %q", got)
		}
	})
}

func testExec(t *testing.T, h *harness) {
	spec := h.spec("exec")
	spec.Env = map[string]string{"KINC_SPEC_ENV": "from-spec"}
	n := h.create(t, spec)
	ctx := context.Background()

	t.Run("ExitCodeAndOutput", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		err := h.rt.Exec(ctx, n.Name, runtime.ExecSpec{Cmd: []string{"/testbin", "exit", "3"}, Stdout: &stdout, Stderr: &stderr})
		var exitErr *runtime.ExitError
		if !errors.As(err, &exitErr) {
			t.Fatalf("Exec(exit 3) = %v, want *ExitError", err)
		}
		if exitErr.Code != 3 {
			t.Errorf("exit code = %d, want 3", exitErr.Code)
		}
		if !strings.Contains(exitErr.Output, "to stdout") || !strings.Contains(exitErr.Output, "to stderr") {
			t.Errorf("ExitError.Output = %q, want both streams", exitErr.Output)
		}
		if stdout.String() != "to stdout\n" || stderr.String() != "to stderr\n" {
			t.Errorf("stdout %q, stderr %q; want them apart", stdout.String(), stderr.String())
		}
	})
	t.Run("Success", func(t *testing.T) {
		if err := h.rt.Exec(ctx, n.Name, runtime.ExecSpec{Cmd: []string{"/testbin", "exit", "0"}}); err != nil {
			t.Errorf("Exec(exit 0) = %v", err)
		}
	})
	t.Run("Stdin", func(t *testing.T) {
		in := strings.Repeat("kinc stdin line\n", 5000) // more than one pipe buffer
		var out bytes.Buffer
		err := h.rt.Exec(ctx, n.Name, runtime.ExecSpec{Cmd: []string{"/testbin", "cat"}, Stdin: strings.NewReader(in), Stdout: &out})
		if err != nil {
			t.Fatalf("Exec(cat) = %v", err)
		}
		if out.String() != in {
			t.Errorf("cat returned %d bytes, want %d", out.Len(), len(in))
		}
	})
	t.Run("Env", func(t *testing.T) {
		var out bytes.Buffer
		err := h.rt.Exec(ctx, n.Name, runtime.ExecSpec{Cmd: []string{"/testbin", "getenv", "KINC_X"}, Env: map[string]string{"KINC_X": "y z"}, Stdout: &out})
		if err != nil || out.String() != "y z\n" {
			t.Errorf("getenv KINC_X = %q, %v; want \"y z\"", out.String(), err)
		}
		if got := h.exec(t, n.Name, "/testbin", "getenv", "KINC_SPEC_ENV"); got != "from-spec\n" {
			t.Errorf("NodeSpec.Env not set: %q", got)
		}
		if got := h.exec(t, n.Name, "/testbin", "getenv", runtime.ContainerEnv); got != h.backend+"\n" {
			t.Errorf("container=%q, want %q", strings.TrimSpace(got), h.backend)
		}
	})
	t.Run("User", func(t *testing.T) {
		var out bytes.Buffer
		err := h.rt.Exec(ctx, n.Name, runtime.ExecSpec{Cmd: []string{"/testbin", "id"}, User: "1234", Stdout: &out})
		if err != nil || out.String() != "1234\n" {
			t.Errorf("id as user 1234 = %q, %v", out.String(), err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			go func(i int) {
				var out bytes.Buffer
				err := h.rt.Exec(ctx, n.Name, runtime.ExecSpec{Cmd: []string{"/testbin", "echo", strconv.Itoa(i)}, Stdout: &out})
				if err == nil && out.String() != fmt.Sprintf("%d\n", i) {
					err = fmt.Errorf("exec %d printed %q", i, out.String())
				}
				errs <- err
			}(i)
		}
		for i := 0; i < 8; i++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})
}

func testCopy(t *testing.T, h *harness) {
	n := h.create(t, h.spec("copy"))
	ctx := context.Background()
	content := []byte("kinc copy round trip\n" + strings.Repeat("x", 100000))
	// Not /run or /tmp: docker copies beneath tmpfs mounts (see CopyTo).
	for _, dir := range []string{"/etc", "/var"} {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			tar := runtime.TarFiles(runtime.File{Name: "kinc-test/file.txt", Content: content, Mode: 0o600})
			if err := h.rt.CopyTo(ctx, n.Name, dir, tar); err != nil {
				t.Fatalf("CopyTo(%s): %v", dir, err)
			}
			path := dir + "/kinc-test/file.txt"
			if got := h.exec(t, n.Name, "/testbin", "cat", path); got != string(content) {
				t.Fatalf("file in the container has %d bytes, want %d", len(got), len(content))
			}
			rc, err := h.rt.CopyFrom(ctx, n.Name, path)
			if err != nil {
				t.Fatalf("CopyFrom(%s): %v", path, err)
			}
			defer rc.Close()
			got, err := runtime.ReadTarFile(rc, "file.txt")
			if err != nil {
				t.Fatalf("CopyFrom(%s): %v", path, err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("CopyFrom returned %d bytes, want %d", len(got), len(content))
			}
		})
	}
}

func testLogs(t *testing.T, h *harness) {
	n := h.create(t, h.spec("logs"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var buf bytes.Buffer
		err := h.rt.Logs(context.Background(), n.Name, &buf)
		if err != nil {
			t.Fatalf("Logs: %v", err)
		}
		if strings.Contains(buf.String(), "kinc-testbin ready") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Logs = %q, want the banner the entrypoint printed", buf.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func testList(t *testing.T, h *harness) {
	cluster := h.name("list")
	var names []string
	for _, role := range []string{"control-plane", "worker"} {
		spec := h.spec("list", role)
		spec.Labels = map[string]string{runtime.LabelCluster: cluster, runtime.LabelRole: role}
		h.create(t, spec)
		names = append(names, spec.Name)
	}
	ctx := context.Background()
	all, err := h.rt.ListNodes(ctx, map[string]string{runtime.LabelCluster: cluster})
	if err != nil {
		t.Fatalf("ListNodes: %v", err)
	}
	if got := nodeNames(all); strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("ListNodes(cluster) = %v, want %v", got, names)
	}
	for _, n := range all {
		if n.Labels[runtime.LabelCluster] != cluster || n.State != runtime.StateRunning || n.ID == "" {
			t.Errorf("listed node %+v: want its labels, an ID and state running", n)
		}
	}
	workers, err := h.rt.ListNodes(ctx, map[string]string{runtime.LabelCluster: cluster, runtime.LabelRole: "worker"})
	if err != nil {
		t.Fatalf("ListNodes: %v", err)
	}
	if got := nodeNames(workers); len(got) != 1 || got[0] != names[1] {
		t.Errorf("ListNodes(cluster, worker) = %v, want [%s]", got, names[1])
	}
	none, err := h.rt.ListNodes(ctx, map[string]string{runtime.LabelCluster: h.name("nobody")})
	if err != nil || len(none) != 0 {
		t.Errorf("ListNodes(unknown cluster) = %v, %v; want none", nodeNames(none), err)
	}
	// Stopped nodes are listed too: delete must find them.
	if err := h.rt.StopNode(ctx, names[1]); err != nil {
		t.Fatalf("StopNode: %v", err)
	}
	workers, err = h.rt.ListNodes(ctx, map[string]string{runtime.LabelCluster: cluster, runtime.LabelRole: "worker"})
	if err != nil || len(workers) != 1 || workers[0].State != runtime.StateStopped {
		t.Errorf("ListNodes after stop = %+v, %v; want one stopped node", workers, err)
	}
}

func nodeNames(nodes []runtime.NodeStatus) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}

func testNetwork(t *testing.T, h *harness) {
	net1 := h.network(t, "net")
	again, err := h.rt.EnsureNetwork(context.Background(), runtime.NetworkSpec{Name: net1.Name, Subnet: randomSubnet()})
	if err != nil || again.Subnet != net1.Subnet {
		t.Fatalf("EnsureNetwork on an existing network = %+v, %v; want it unchanged (%s)", again, err, net1.Subnet)
	}
	a := h.spec("net", "a")
	a.Network, a.Aliases = net1.Name, []string{h.name("alias-a")}
	a.IP = hostIn(t, net1.Subnet, 10)
	a.Hostname = "kinc-custom-host"
	b := h.spec("net", "b")
	b.Network = net1.Name
	na := h.create(t, a)
	nb := h.create(t, b)
	if na.IPv4 != a.IP {
		t.Errorf("node a IPv4 = %q, want the fixed %q", na.IPv4, a.IP)
	}
	if nb.IPv4 == "" || !inSubnet(nb.IPv4, net1.Subnet) {
		t.Errorf("node b IPv4 = %q, want one in %s", nb.IPv4, net1.Subnet)
	}
	for _, target := range []string{na.IPv4, a.Name, a.Aliases[0]} {
		t.Run("b_to_"+target, func(t *testing.T) {
			out, err := dialWithRetry(h, b.Name, net.JoinHostPort(target, "8080"))
			if err != nil {
				t.Fatalf("dial %s from b: %v", target, err)
			}
			// The banner names the server's hostname.
			if out != "kinc-testbin kinc-custom-host\n" {
				t.Errorf("dial %s from b read %q, want a's banner with its hostname", target, out)
			}
		})
	}
	t.Run("a_to_b", func(t *testing.T) {
		out, err := dialWithRetry(h, a.Name, net.JoinHostPort(b.Name, "8080"))
		if err != nil {
			t.Fatalf("dial b by name from a: %v", err)
		}
		if out != "kinc-testbin "+b.Name+"\n" {
			t.Errorf("b's banner = %q, want its hostname to default to its name", out)
		}
	})
}

// dialWithRetry dials from inside node: DNS for a new container can lag.
func dialWithRetry(h *harness, node, addr string) (string, error) {
	var out string
	var err error
	for i := 0; i < 20; i++ {
		if out, err = h.try(node, "/testbin", "dial", addr); err == nil {
			return out, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return out, err
}

func hostIn(t testing.TB, cidr string, host byte) string {
	t.Helper()
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatal(err)
	}
	ip := ipnet.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], host).String()
}

func inSubnet(ip, cidr string) bool {
	_, ipnet, err := net.ParseCIDR(cidr)
	return err == nil && ipnet.Contains(net.ParseIP(ip))
}

func testPublishedPort(t *testing.T, h *harness) {
	n1 := h.network(t, "ports")
	spec := h.spec("ports")
	spec.Network = n1.Name
	spec.Ports = []runtime.PortMapping{{ListenAddress: "127.0.0.1", ContainerPort: 8080}}
	st := h.create(t, spec)
	port := publishedPort(t, st, 8080)
	out, err := dialHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("dialing the published port %d from the host: %v", port, err)
	}
	if !strings.HasPrefix(out, "kinc-testbin ") {
		t.Errorf("published port %d answered %q", port, out)
	}
	inspected, err := h.rt.InspectNode(context.Background(), spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := publishedPort(t, inspected, 8080); got != port {
		t.Errorf("InspectNode port = %d, CreateNode said %d", got, port)
	}
}

func publishedPort(t testing.TB, st runtime.NodeStatus, containerPort int) int {
	t.Helper()
	for _, p := range st.Ports {
		if p.ContainerPort == containerPort && p.Protocol == "tcp" {
			if p.HostPort == 0 {
				t.Fatalf("port %d published on host port 0: %+v", containerPort, st.Ports)
			}
			if p.ListenAddress != "127.0.0.1" {
				t.Errorf("port %d listens on %q, want 127.0.0.1", containerPort, p.ListenAddress)
			}
			return p.HostPort
		}
	}
	t.Fatalf("port %d not reported: %+v", containerPort, st.Ports)
	return 0
}

// dialHost reads the banner at addr, retrying while the container starts.
func dialHost(addr string) (string, error) {
	var lastErr error
	for i := 0; i < 40; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil {
				return line, nil
			}
			err = rerr
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	return "", lastErr
}

func testRestart(t *testing.T, h *harness) {
	n1 := h.network(t, "restart")
	spec := h.spec("restart")
	spec.Network = n1.Name
	spec.IP = hostIn(t, n1.Subnet, 20)
	spec.Ports = []runtime.PortMapping{{ListenAddress: "127.0.0.1", ContainerPort: 8080}}
	st := h.create(t, spec)
	port := publishedPort(t, st, 8080)
	// A second node takes the next address while the first is down.
	other := h.spec("restart", "other")
	other.Network = n1.Name
	ctx := context.Background()
	if err := h.rt.StopNode(ctx, spec.Name); err != nil {
		t.Fatalf("StopNode: %v", err)
	}
	stopped, err := h.rt.InspectNode(ctx, spec.Name)
	if err != nil || stopped.State != runtime.StateStopped {
		t.Fatalf("after StopNode: %+v, %v; want stopped", stopped, err)
	}
	h.create(t, other)
	if err := h.rt.StartNode(ctx, spec.Name); err != nil {
		t.Fatalf("StartNode: %v", err)
	}
	again, err := h.rt.InspectNode(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if again.State != runtime.StateRunning || again.IPv4 != spec.IP {
		t.Errorf("after restart: state %q IP %q; want running on %s", again.State, again.IPv4, spec.IP)
	}
	if got := publishedPort(t, again, 8080); got != port {
		t.Errorf("after restart the host port is %d, was %d", got, port)
	}
	if _, err := dialHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
		t.Errorf("published port after restart: %v", err)
	}
}

func testDelete(t *testing.T, h *harness) {
	ctx := context.Background()
	n1 := h.network(t, "del")
	spec := h.spec("del")
	spec.Network = n1.Name
	h.create(t, spec)
	// Something in the /var volume, to see that the volume goes too.
	h.exec(t, spec.Name, "/testbin", "write", "/var/kinc-marker", "old")
	if err := h.rt.DeleteNode(ctx, spec.Name); err != nil {
		t.Fatalf("DeleteNode: %v", err)
	}
	if _, err := h.rt.InspectNode(ctx, spec.Name); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("InspectNode after delete = %v, want ErrNotFound", err)
	}
	if nodes, err := h.rt.ListNodes(ctx, spec.Labels); err != nil {
		t.Fatal(err)
	} else {
		for _, n := range nodes {
			if n.Name == spec.Name {
				t.Errorf("ListNodes after delete still has %s", spec.Name)
			}
		}
	}
	// The same name again must get a fresh /var.
	h.create(t, spec)
	if out, err := h.try(spec.Name, "/testbin", "cat", "/var/kinc-marker"); err == nil {
		t.Errorf("a new node of the same name sees the old /var (%q): the volume was not deleted", out)
	}
	if err := h.rt.DeleteNode(ctx, spec.Name); err != nil {
		t.Fatalf("DeleteNode: %v", err)
	}
	if err := h.rt.DeleteNetwork(ctx, n1.Name); err != nil {
		t.Fatalf("DeleteNetwork: %v", err)
	}
	if err := h.rt.DeleteNetwork(ctx, n1.Name); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("second DeleteNetwork = %v, want ErrNotFound", err)
	}
}

func testImages(t *testing.T, h *harness) {
	ctx := context.Background()
	// A second tag, so that the archive holds more than one name.
	second := h.testbin + "-second"
	names, err := h.rt.LoadImage(ctx, bytes.NewReader(retag(t, h.testbin, second)))
	if err != nil {
		t.Fatalf("LoadImage(%s): %v", second, err)
	}
	if !containsRef(names, second) {
		t.Errorf("LoadImage returned %v, want %s among them", names, second)
	}
	var buf bytes.Buffer
	if err := h.rt.SaveImages(ctx, []string{h.testbin, second}, &buf); err != nil {
		t.Fatalf("SaveImages: %v", err)
	}
	tags, err := readArchiveTags(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{h.testbin, second} {
		if !containsRef(tags, want) {
			t.Errorf("saved archive names %v, want %s", tags, want)
		}
	}
	names, err = h.rt.LoadImage(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("LoadImage(saved archive): %v", err)
	}
	if !containsRef(names, h.testbin) {
		t.Errorf("LoadImage returned %v, want %s among them", names, h.testbin)
	}
	if ok, err := h.rt.ImageExists(ctx, second); !ok || err != nil {
		t.Errorf("ImageExists(%s) = %v, %v", second, ok, err)
	}

	t.Run("OCIArchive", func(t *testing.T) {
		ref := h.testbin + "-oci"
		names, err := h.rt.LoadImage(ctx, bytes.NewReader(ociArchive(t, h.testbin, ref)))
		if err != nil {
			t.Fatalf("LoadImage(oci-archive): %v", err)
		}
		if ok, err := h.rt.ImageExists(ctx, ref); !ok || err != nil {
			t.Errorf("after loading an oci-archive naming %s (LoadImage said %v): ImageExists = %v, %v", ref, names, ok, err)
		}
	})
	t.Run("BrokenArchive", func(t *testing.T) {
		if _, err := h.rt.LoadImage(ctx, strings.NewReader("not a tar")); err == nil {
			t.Errorf("LoadImage(garbage) succeeded")
		}
	})
}

// containsRef compares references loosely: daemons may add "docker.io/" or
// drop "localhost/".
func containsRef(refs []string, want string) bool {
	norm := func(s string) string {
		s = strings.TrimPrefix(s, "docker.io/")
		return strings.TrimPrefix(s, "localhost/")
	}
	for _, r := range refs {
		if norm(r) == norm(want) {
			return true
		}
	}
	return false
}

// testCPUShares reads what the node's cgroup says (its own cgroup
// namespace makes it the root of /sys/fs/cgroup) after each update.
func testCPUShares(t *testing.T, h *harness) {
	ctx := context.Background()
	info, err := h.rt.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := h.create(t, h.spec("shares"))
	read := func(shares uint64) int {
		t.Helper()
		if err := h.rt.SetCPUShares(ctx, n.Name, shares); err != nil {
			t.Fatalf("SetCPUShares(%d): %v", shares, err)
		}
		file := "/sys/fs/cgroup/cpu/cpu.shares"
		if info.CgroupVersion == 2 {
			file = "/sys/fs/cgroup/cpu.weight"
		}
		out := strings.TrimSpace(h.exec(t, n.Name, "/testbin", "cat", file))
		v, err := strconv.Atoi(out)
		if err != nil {
			t.Fatalf("%s = %q: %v", file, out, err)
		}
		return v
	}
	low, normal := read(256), read(1024)
	if info.CgroupVersion == 1 && (low != 256 || normal != 1024) {
		t.Errorf("cpu.shares after setting 256, then 1024: %d, %d", low, normal)
	}
	// cgroup v2's weight is a conversion that runc and crun make apart.
	if info.CgroupVersion == 2 && low >= normal {
		t.Errorf("cpu.weight after setting shares 256, then 1024: %d, %d; want the first lower", low, normal)
	}
	if err := h.rt.SetCPUShares(ctx, h.name("missing"), 1024); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("SetCPUShares on a missing node = %v, want ErrNotFound", err)
	}
}

func testSystemd(t *testing.T, h *harness) {
	img := h.systemdImage(t)
	spec := h.spec("systemd")
	spec.Image = img
	h.create(t, spec)
	h.waitSystemd(t, spec.Name, 2*time.Minute)
	// What a node needs of its mounts.
	for _, check := range [][]string{
		{"findmnt", "-n", "-o", "FSTYPE", "/run"},
		{"findmnt", "-n", "-o", "FSTYPE", "/tmp"},
	} {
		if out := strings.TrimSpace(h.exec(t, spec.Name, check...)); out != "tmpfs" {
			t.Errorf("%v = %q, want tmpfs", check, out)
		}
	}
	if out := h.exec(t, spec.Name, "findmnt", "-n", "-o", "TARGET", "/var"); strings.TrimSpace(out) != "/var" {
		t.Errorf("/var is not a mount of its own: %q", out)
	}
	if out := strings.TrimSpace(h.exec(t, spec.Name, "printenv", runtime.ContainerEnv)); out != h.backend {
		t.Errorf("systemd node has container=%q, want %q", out, h.backend)
	}
}

func testIsolation(t *testing.T, h *harness) {
	img := h.systemdImage(t)
	var names []string
	for _, n := range []string{"a", "b"} {
		spec := h.spec("iso", n)
		spec.Image = img
		h.create(t, spec)
		names = append(names, spec.Name)
	}
	for _, n := range names {
		h.waitSystemd(t, n, 2*time.Minute)
	}
	if err := h.rt.DeleteNode(context.Background(), names[0]); err != nil {
		t.Fatalf("DeleteNode(%s): %v", names[0], err)
	}
	survivor := names[1]
	h.waitSystemd(t, survivor, 30*time.Second)
	// A new transient unit needs systemd to make a cgroup of its own: that is
	// what broke when nodes shared the host's name=systemd hierarchy.
	if out, err := h.try(survivor, "systemd-run", "--wait", "--quiet", "--unit", "kinc-probe", "true"); err != nil {
		t.Errorf("systemd-run in the surviving node: %v %s", err, out)
	}
	if _, err := h.try(survivor, "sh", "-c", "test -d /sys/fs/cgroup/systemd/system.slice || test -d /sys/fs/cgroup/system.slice"); err != nil {
		t.Errorf("system.slice cgroup gone in the surviving node: %v", err)
	}
}

// Bench measures creating a systemd node until systemd runs, and deleting it.
func Bench(b *testing.B, backend string, newRuntime NewRuntime) {
	Wanted(b, backend)
	h := newHarness(b, backend, newRuntime)
	img := h.systemdImage(b)
	ctx := context.Background()
	var created, running, deleted time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		spec := h.spec("bench", strconv.Itoa(i))
		spec.Image = img
		start := time.Now()
		if _, err := h.rt.CreateNode(ctx, spec); err != nil {
			b.Fatalf("CreateNode: %v", err)
		}
		t1 := time.Now()
		if state, err := WaitSystemd(h.rt, spec.Name, 2*time.Minute); err != nil {
			_ = h.rt.DeleteNode(ctx, spec.Name)
			b.Fatalf("systemd: %v (%s)", err, state)
		}
		t2 := time.Now()
		if err := h.rt.DeleteNode(ctx, spec.Name); err != nil {
			b.Fatalf("DeleteNode: %v", err)
		}
		created += t1.Sub(start)
		running += t2.Sub(start)
		deleted += time.Since(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(created.Milliseconds())/n, "create-ms/op")
	b.ReportMetric(float64(running.Milliseconds())/n, "running-ms/op")
	b.ReportMetric(float64(deleted.Milliseconds())/n, "delete-ms/op")
}

func testMounts(t *testing.T, h *harness) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "host.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := h.spec("mounts")
	spec.Mounts = []runtime.Mount{
		{HostPath: dir, ContainerPath: "/mnt/ro", ReadOnly: true},
		{HostPath: dir, ContainerPath: "/mnt/rw", SELinuxRelabel: true, Propagation: runtime.PropagationHostToContainer},
	}
	n := h.create(t, spec)
	if got := h.exec(t, n.Name, "/testbin", "cat", "/mnt/ro/host.txt"); got != "from the host" {
		t.Errorf("read-only mount shows %q", got)
	}
	if _, err := h.try(n.Name, "/testbin", "write", "/mnt/ro/new.txt", "x"); err == nil {
		t.Errorf("writing to the read-only mount worked")
	}
	h.exec(t, n.Name, "/testbin", "write", "/mnt/rw/new.txt", "from the node")
	if got, err := os.ReadFile(filepath.Join(dir, "new.txt")); err != nil || string(got) != "from the node" {
		t.Errorf("file written through the rw mount: %q, %v", got, err)
	}
}

func testDualStack(t *testing.T, h *harness) {
	var b [2]byte
	_, _ = rand.Read(b[:])
	spec := runtime.NetworkSpec{
		Name:     h.name("dual"),
		Labels:   map[string]string{runtime.LabelCluster: h.prefix},
		Subnet:   randomSubnet(),
		IPv6:     true,
		SubnetV6: fmt.Sprintf("fd00:4b1c:%x::/64", uint16(b[0])<<8|uint16(b[1])),
	}
	t.Cleanup(func() { _ = h.rt.DeleteNetwork(context.Background(), spec.Name) })
	n, err := h.rt.EnsureNetwork(context.Background(), spec)
	if err != nil {
		t.Fatalf("EnsureNetwork(%+v): %v", spec, err)
	}
	if n.Subnet != spec.Subnet || n.SubnetV6 != spec.SubnetV6 {
		t.Errorf("EnsureNetwork = %+v, want subnets %s and %s", n, spec.Subnet, spec.SubnetV6)
	}
	node := h.spec("dual")
	node.Network = n.Name
	node.IP = hostIn(t, n.Subnet, 30)
	node.IPv6 = strings.TrimSuffix(spec.SubnetV6, "/64") + "30"
	st := h.create(t, node)
	if st.IPv4 != node.IP || net.ParseIP(st.IPv6).String() != net.ParseIP(node.IPv6).String() {
		t.Errorf("node addresses %q %q, want %s %s", st.IPv4, st.IPv6, node.IP, node.IPv6)
	}
}
