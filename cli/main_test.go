package cli

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kinc-dev/kinc/runtime"
)

// TestMain removes, whatever the tests did, the work directory of the
// node image ensureNodeImage built (about 770 MB under $TMPDIR): left
// behind, each run of the suite filled the disk a little more.
func TestMain(m *testing.M) {
	code := m.Run()
	if nodeImage != nil {
		nodeImage.Close()
	}
	os.Exit(code)
}

// testRuntimes are the runtimes real tests use: $KINC_TEST_RUNTIMES, else
// all three. A listed runtime that does not answer fails its test.
func testRuntimes() []string {
	if s := strings.Fields(os.Getenv("KINC_TEST_RUNTIMES")); len(s) > 0 {
		return s
	}
	return []string{"podman", "docker", "containerd"}
}

// openTestRuntime connects to a test runtime or fails the test; it is
// closed when the test ends.
func openTestRuntime(t testing.TB, name string) runtime.Runtime {
	t.Helper()
	rt, err := runtime.Detect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// freshCluster removes what an aborted earlier run may have left of the
// cluster, and deletes the cluster when the test ends.
func freshCluster(t *testing.T, rt, name, kubeconfig string) {
	t.Helper()
	del := func() { run(t, "", "--runtime", rt, "delete", "cluster", "--name", name, "--kubeconfig", kubeconfig) }
	del()
	t.Cleanup(del)
}
