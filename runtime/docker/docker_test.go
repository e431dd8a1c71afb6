package docker_test

import (
	"context"
	"testing"

	"github.com/kinc-dev/kinc/runtime"
	"github.com/kinc-dev/kinc/runtime/docker"
	"github.com/kinc-dev/kinc/runtime/runtimetest"
)

func newRuntime(t testing.TB) runtime.Runtime {
	t.Helper()
	rt, err := docker.New(context.Background())
	if err != nil {
		t.Fatalf("docker must be reachable for this test (start it with .ci/setup-runtimes): %v", err)
	}
	return rt
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, docker.Name, newRuntime)
}

func BenchmarkNode(b *testing.B) {
	runtimetest.Bench(b, docker.Name, newRuntime)
}

func TestDetect(t *testing.T) {
	runtimetest.Wanted(t, docker.Name)
	rt, err := runtime.Detect(context.Background(), docker.Name)
	if err != nil {
		t.Fatalf("Detect(docker): %v", err)
	}
	defer rt.Close()
	if info, err := rt.Info(context.Background()); err != nil || info.Name != docker.Name {
		t.Errorf("Detect(docker) gave %+v, %v", info, err)
	}
}
