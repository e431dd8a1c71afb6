package containerd_test

import (
	"context"
	"testing"

	"github.com/kinc-dev/kinc/runtime"
	"github.com/kinc-dev/kinc/runtime/containerd"
	"github.com/kinc-dev/kinc/runtime/runtimetest"
)

// newRuntime connects to the daemon at CONTAINERD_ADDRESS (or the default
// socket), in a namespace of the suite's own.
func newRuntime(t testing.TB) runtime.Runtime {
	t.Helper()
	rt, err := containerd.New(context.Background(), containerd.WithNamespace("kinc-test"))
	if err != nil {
		t.Fatalf("containerd must be running for this test (start it, or use -short): %v", err)
	}
	return rt
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, "containerd", newRuntime)
}

func BenchmarkNode(b *testing.B) {
	runtimetest.Bench(b, "containerd", newRuntime)
}
