// Package runtimetest is the conformance suite every kinc runtime backend
// passes against its real daemon: one subtest per promise of
// runtime.Runtime. Each backend's own test calls Run (and Bench); the suite
// skips under -short and otherwise fails, never skips, when the daemon does
// not answer.
package runtimetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/runtime"
)

// NewRuntime connects to the backend under test; it fails t when the
// daemon does not answer.
type NewRuntime func(t testing.TB) runtime.Runtime

// Wanted skips t under -short, and when KINC_TEST_RUNTIMES is set without
// naming backend; otherwise the backend's daemon must be reachable.
func Wanted(t testing.TB, backend string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s conformance suite needs the real daemon: skipped under -short", backend)
	}
	if want := os.Getenv("KINC_TEST_RUNTIMES"); want != "" {
		for _, w := range strings.Fields(strings.ReplaceAll(want, ",", " ")) {
			if w == backend {
				return
			}
		}
		t.Skipf("KINC_TEST_RUNTIMES=%q does not name %s", want, backend)
	}
}

// harness is what the cases share: the runtime, a unique prefix for every
// name they make, and the images.
type harness struct {
	backend string
	rt      runtime.Runtime
	prefix  string

	testbin string

	systemdOnce sync.Once
	systemd     string
}

func newHarness(t testing.TB, backend string, newRuntime NewRuntime) *harness {
	t.Helper()
	rt := newRuntime(t)
	t.Cleanup(func() { _ = rt.Close() })
	var b [4]byte
	_, _ = rand.Read(b[:])
	h := &harness{backend: backend, rt: rt, prefix: "kinc-rt-" + hex.EncodeToString(b[:])}
	ref, archive := TestbinArchive(t)
	EnsureImage(t, rt, ref, archive)
	h.testbin = ref
	return h
}

// systemdImage loads the base node image on first use (it is big).
func (h *harness) systemdImage(t testing.TB) string {
	t.Helper()
	h.systemdOnce.Do(func() {
		ref, archive := SystemdArchive(t)
		EnsureImage(t, h.rt, ref, archive)
		h.systemd = ref
	})
	if h.systemd == "" {
		t.Fatal("the systemd image could not be loaded (see the first failure)")
	}
	return h.systemd
}

// name returns a name unique to this run.
func (h *harness) name(parts ...string) string {
	return h.prefix + "-" + strings.Join(parts, "-")
}

// spec is a testbin node labelled with this run's prefix.
func (h *harness) spec(parts ...string) runtime.NodeSpec {
	return runtime.NodeSpec{
		Name:   h.name(parts...),
		Image:  h.testbin,
		Labels: map[string]string{runtime.LabelCluster: h.prefix},
	}
}

// create creates a node and deletes it when the test ends, pass or fail.
func (h *harness) create(t testing.TB, spec runtime.NodeSpec) runtime.NodeStatus {
	t.Helper()
	t.Cleanup(func() { h.deleteQuietly(t, spec.Name) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := h.rt.CreateNode(ctx, spec)
	if err != nil {
		t.Fatalf("CreateNode(%s): %v", spec.Name, err)
	}
	if st.State != runtime.StateRunning {
		t.Fatalf("CreateNode(%s) state = %q, want running", spec.Name, st.State)
	}
	return st
}

func (h *harness) deleteQuietly(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.rt.DeleteNode(ctx, name); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("cleanup: DeleteNode(%s): %v", name, err)
	}
}

// network creates a network with a subnet unlikely to clash with others'
// and deletes it when the test ends.
func (h *harness) network(t testing.TB, suffix string) runtime.Network {
	t.Helper()
	spec := runtime.NetworkSpec{
		Name:   h.name(suffix),
		Labels: map[string]string{runtime.LabelCluster: h.prefix},
		Subnet: randomSubnet(),
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.rt.DeleteNetwork(ctx, spec.Name); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("cleanup: DeleteNetwork(%s): %v", spec.Name, err)
		}
	})
	n, err := h.rt.EnsureNetwork(context.Background(), spec)
	if err != nil {
		t.Fatalf("EnsureNetwork(%+v): %v", spec, err)
	}
	if n.Subnet != spec.Subnet {
		t.Fatalf("EnsureNetwork(%s) subnet = %q, want %q", spec.Name, n.Subnet, spec.Subnet)
	}
	return n
}

// randomSubnet picks a /24 in 10.200.0.0/13.
func randomSubnet() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("10.%d.%d.0/24", 200+int(b[0])%8, b[1])
}

// exec runs cmd and returns stdout; it fails t on any error.
func (h *harness) exec(t testing.TB, node string, cmd ...string) string {
	t.Helper()
	out, err := h.try(node, cmd...)
	if err != nil {
		t.Fatalf("exec %q in %s: %v", cmd, node, err)
	}
	return out
}

func (h *harness) try(node string, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout bytes.Buffer
	err := h.rt.Exec(ctx, node, runtime.ExecSpec{Cmd: cmd, Stdout: &stdout})
	return stdout.String(), err
}

// waitSystemd waits until systemd in node reports running or degraded.
func (h *harness) waitSystemd(t testing.TB, node string, timeout time.Duration) {
	t.Helper()
	if state, err := WaitSystemd(h.rt, node, timeout); err != nil {
		t.Fatalf("systemd in %s: %v (last state %q)", node, err, state)
	}
}

// WaitSystemd waits until `systemctl is-system-running` in node says
// running or degraded, and returns the last state seen.
func WaitSystemd(rt runtime.Runtime, node string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var state string
	var lastErr error
	for {
		var out bytes.Buffer
		err := rt.Exec(ctx, node, runtime.ExecSpec{Cmd: []string{"systemctl", "is-system-running", "--wait"}, Stdout: &out})
		state = strings.TrimSpace(out.String())
		if state == "running" || state == "degraded" {
			return state, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return state, fmt.Errorf("not running after %s: %v", timeout, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
