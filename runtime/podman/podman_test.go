package podman_test

import (
	"context"
	"testing"

	"github.com/kinc-dev/kinc/runtime"
	"github.com/kinc-dev/kinc/runtime/podman"
	"github.com/kinc-dev/kinc/runtime/runtimetest"
)

func newRuntime(t testing.TB) runtime.Runtime {
	t.Helper()
	rt, err := podman.New(context.Background())
	if err != nil {
		t.Fatalf("podman must be reachable for this test (start it with .ci/setup-runtimes): %v", err)
	}
	return rt
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, podman.Name, newRuntime)
}

func BenchmarkNode(b *testing.B) {
	runtimetest.Bench(b, podman.Name, newRuntime)
}

// Auto-detection prefers podman when its socket answers.
func TestDetect(t *testing.T) {
	runtimetest.Wanted(t, podman.Name)
	for _, name := range []string{"", podman.Name} {
		rt, err := runtime.Detect(context.Background(), name)
		if err != nil {
			t.Fatalf("Detect(%q): %v", name, err)
		}
		info, err := rt.Info(context.Background())
		rt.Close()
		if err != nil || info.Name != podman.Name {
			t.Errorf("Detect(%q) gave %+v, %v; want podman", name, info, err)
		}
	}
	results, err := runtime.Probe(context.Background())
	if err != nil || len(results) == 0 || results[0].Name != podman.Name || results[0].Info == nil {
		t.Errorf("Probe = %+v, %v; want podman first and reachable", results, err)
	}
}
