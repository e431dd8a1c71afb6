package cli

import (
	"os"
	"strings"
)

// testRuntimes are the runtimes real tests use: $KINC_TEST_RUNTIMES, else
// all three. A listed runtime that does not answer fails its test.
func testRuntimes() []string {
	if s := strings.Fields(os.Getenv("KINC_TEST_RUNTIMES")); len(s) > 0 {
		return s
	}
	return []string{"podman", "docker", "containerd"}
}
