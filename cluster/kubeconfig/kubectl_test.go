package kubeconfig

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kubectl runs kubectl's config commands on file p, or skips the test when
// kubectl is not installed.
func kubectl(t *testing.T, p string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", p}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// What Merge writes is what kubectl reads, and kinc's record survives
// kubectl rewriting the file.
func TestKubectlReadsMerge(t *testing.T) {
	e, err := FromAdmin(readFixture(t, "admin.conf"), "dev", "https://127.0.0.1:40123")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, fixture, before string
	}{
		{"into kubectl's file", "kubectl.yaml", "dev"},
		{"into a new file", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var orig []byte
			if tc.fixture != "" {
				orig = readFixture(t, tc.fixture)
			}
			p := setup(t, orig)
			mustMerge(t, p, e)

			if got := kubectl(t, p, "config", "get-contexts", "-o", "name"); !strings.Contains("\n"+got+"\n", "\nkinc-dev\n") {
				t.Errorf("get-contexts lacks kinc-dev:\n%s", got)
			}
			const view = `{.current-context}{"\n"}` +
				`{.clusters[?(@.name=="kinc-dev")].cluster.server}{"\n"}` +
				`{.clusters[?(@.name=="kinc-dev")].cluster.certificate-authority-data}{"\n"}` +
				`{.users[?(@.name=="kinc-dev")].user.client-key-data}{"\n"}` +
				`{.contexts[?(@.name=="kinc-dev")].context.user}`
			want := strings.Join([]string{
				"kinc-dev",
				"https://127.0.0.1:40123",
				base64.StdEncoding.EncodeToString(e.CertificateAuthorityData),
				base64.StdEncoding.EncodeToString(e.ClientKeyData),
				"kinc-dev",
			}, "\n")
			if got := kubectl(t, p, "config", "view", "--raw", "-o", "jsonpath="+view); got != want {
				t.Errorf("kubectl config view:\n%s\nwant:\n%s", got, want)
			}

			// kubectl rewrites the whole file from its structs; the record
			// must come through for Remove to restore the context.
			kubectl(t, p, "config", "set-context", "kinc-dev", "--namespace=default")
			mustRemove(t, p, "dev")
			if got := kubectl(t, p, "config", "view", "-o", "jsonpath={.current-context}"); got != tc.before {
				t.Errorf("current-context after Remove = %q, want %q", got, tc.before)
			}
			if got := kubectl(t, p, "config", "get-contexts", "-o", "name"); strings.Contains(got, "kinc-dev") {
				t.Errorf("kinc-dev still listed:\n%s", got)
			}
		})
	}
}

// A file kubectl itself wrote from nothing round-trips through Merge and
// Remove byte for byte.
func TestKubectlWrittenRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config")
	kubectl(t, p, "config", "set-cluster", "other", "--server=https://10.1.2.3:6443", "--insecure-skip-tls-verify")
	kubectl(t, p, "config", "set-credentials", "other", "--token=not-a-real-token")
	kubectl(t, p, "config", "set-context", "other", "--cluster=other", "--user=other", "--namespace=web")
	kubectl(t, p, "config", "use-context", "other")
	orig := read(t, p)
	mustMerge(t, p, testEntry("dev", "https://127.0.0.1:1"))
	mustRemove(t, p, "dev")
	if got := read(t, p); !bytes.Equal(got, orig) {
		t.Errorf("after Merge and Remove:\n%s\nwant:\n%s", got, orig)
	}
}
