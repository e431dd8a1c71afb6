package kubeconfig

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, or writes it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to write it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestContextName(t *testing.T) {
	if got := ContextName("dev"); got != "kinc-dev" {
		t.Errorf("ContextName(dev) = %q", got)
	}
}

func TestPath(t *testing.T) {
	sep := string(filepath.ListSeparator)
	for _, tc := range []struct {
		name, explicit, env, want string
	}{
		{name: "flag wins", explicit: "/flag/config", env: "/env/a", want: "/flag/config"},
		{name: "first of KUBECONFIG", env: "/env/a" + sep + "/env/b", want: "/env/a"},
		{name: "empty KUBECONFIG entries skipped", env: sep + "/env/b" + sep, want: "/env/b"},
		{name: "home default", want: "/home/u/.kube/config"},
		{name: "only separators", env: sep + sep, want: "/home/u/.kube/config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "KUBECONFIG" {
					return tc.env
				}
				return ""
			}
			if got := Path(tc.explicit, getenv, "/home/u"); got != tc.want {
				t.Errorf("Path = %q, want %q", got, tc.want)
			}
		})
	}
	if got := Path("", nil, "/h"); got != "/h/.kube/config" {
		t.Errorf("Path with nil getenv = %q", got)
	}
}

func TestFromAdmin(t *testing.T) {
	admin := readFixture(t, "admin.conf")
	e, err := FromAdmin(admin, "dev", "https://127.0.0.1:40123")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ field, got, want string }{
		{"Name", e.Name, "kinc-dev"},
		{"Server", e.Server, "https://127.0.0.1:40123"},
		{"CA", string(e.CertificateAuthorityData), "-----BEGIN CERTIFICATE-----\nZmFrZSBjYSBmb3Iga2luYyB0ZXN0cw==\n-----END CERTIFICATE-----\n"},
		{"cert", string(e.ClientCertificateData), "-----BEGIN CERTIFICATE-----\nZmFrZSBhZG1pbiBjZXJ0aWZpY2F0ZQ==\n-----END CERTIFICATE-----\n"},
		{"key", string(e.ClientKeyData), "-----BEGIN EC PRIVATE KEY-----\nZmFrZSBhZG1pbiBrZXk=\n-----END EC PRIVATE KEY-----\n"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}

	got, err := Get(admin, "dev", "https://127.0.0.1:40123")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "get-dev.yaml", got)

	internal, err := Get(admin, "dev", "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(internal, []byte("server: https://dev-control-plane:6443\n")) {
		t.Errorf("empty server should keep admin.conf's:\n%s", internal)
	}
}

func TestFromAdminErrors(t *testing.T) {
	admin := string(readFixture(t, "admin.conf"))
	for _, tc := range []struct {
		name, conf, cluster, want string
	}{
		{"empty cluster name", admin, "", "empty cluster name"},
		{"not yaml", "clusters: [", "dev", "reading admin.conf"},
		{"no such context", strings.Replace(admin, "current-context: kubernetes-admin@dev", "current-context: other", 1), "dev", `context: "other" not found`},
		{"no such user", strings.Replace(admin, "- name: kubernetes-admin\n", "- name: someone\n", 1), "dev", `user: "kubernetes-admin" not found`},
		{"no key", strings.Replace(admin, "    client-key-data:", "    x-key-data:", 1), "dev", "no client-key-data"},
		{"bad base64", strings.Replace(admin, "client-key-data: LS0t", "client-key-data: x@y", 1), "dev", "decoding client-key-data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromAdmin([]byte(tc.conf), tc.cluster, "https://127.0.0.1:1")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// The discovery file carries the cluster and nothing to log in with.
func TestDiscovery(t *testing.T) {
	got, err := Discovery(readFixture(t, "admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "discovery.yaml", got)
	for _, secret := range []string{"client-key-data", "client-certificate-data", "users"} {
		if bytes.Contains(got, []byte(secret)) {
			t.Errorf("discovery kubeconfig has %s:\n%s", secret, got)
		}
	}
	if _, err := Discovery([]byte("clusters: []\n")); err == nil {
		t.Error("Discovery of an admin.conf without a cluster: no error")
	}
}
