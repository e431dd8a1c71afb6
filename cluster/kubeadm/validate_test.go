package kubeadm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/nodeimage/gobuild"
)

// validateVersion is kinc's default Kubernetes version
// (nodeimage.DefaultKubernetesVersion): its kubeadm judges the goldens.
const validateVersion = "v1.34.4"

var kubernetesVersionLine = regexp.MustCompile(`(?m)^kubernetesVersion: .*$`)

// TestKubeadmValidatesGoldens runs the real `kubeadm config validate` on
// every golden config. kubeadm is built from the Go module proxy (cached
// in $XDG_CACHE_HOME/kinc; minutes when cold); a failed build fails.
func TestKubeadmValidatesGoldens(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kubeadm from the Go module proxy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bins, err := gobuild.Kubernetes(ctx, validateVersion, []string{"kubeadm"})
	if err != nil {
		t.Fatalf("building kubeadm %s: %v", validateVersion, err)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			// kubeadm refuses to deploy a control plane more than a
			// minor or so older than itself; the document's shape is what
			// is checked here, so an older one is judged as the default.
			cfg := kubernetesVersionLine.ReplaceAllString(string(text), "kubernetesVersion: "+validateVersion)
			out, err := exec.CommandContext(ctx, bins["kubeadm"], "config", "validate", "--config", forValidate(t, cfg)).CombinedOutput()
			if err != nil {
				t.Fatalf("kubeadm config validate: %v\n%s", err, out)
			}
			for _, bad := range []string{"unknown field", "strict decoding", "duplicate"} {
				if strings.Contains(string(out), bad) {
					t.Errorf("kubeadm says %q:\n%s", bad, out)
				}
			}
		})
	}
}

// forValidate writes cfg to a temporary file for `kubeadm config
// validate`, which wants a join's discovery file to exist: DiscoveryFile
// is only on nodes, so the config names a temporary one instead.
func forValidate(t *testing.T, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	discovery := filepath.Join(dir, "discovery.conf")
	if err := os.WriteFile(discovery, []byte("apiVersion: v1\nkind: Config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kubeadm.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfg, DiscoveryFile, discovery)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newestVersion is the newest Kubernetes kinc supports: the goldens
// rendered for it are also judged by its own kubeadm, which already
// refuses what older ones only deprecate (v1beta3, removed gates).
const newestVersion = "v1.37.2"

func TestNewestKubeadmValidatesItsGoldens(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kubeadm from the Go module proxy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bins, err := gobuild.Kubernetes(ctx, newestVersion, []string{"kubeadm"})
	if err != nil {
		t.Fatalf("building kubeadm %s: %v", newestVersion, err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", newestVersion+".*.golden"))
	if len(files) == 0 {
		t.Fatalf("no golden files for %s", newestVersion)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, bins["kubeadm"], "config", "validate", "--config", forValidate(t, string(text))).CombinedOutput()
			if err != nil {
				t.Fatalf("kubeadm config validate: %v\n%s", err, out)
			}
			for _, bad := range []string{"unknown field", "strict decoding", "duplicate", "deprecated"} {
				if strings.Contains(string(out), bad) {
					t.Errorf("kubeadm says %q:\n%s", bad, out)
				}
			}
		})
	}
}

// TestContainerdReadsPatchedConfig has the real containerd parse the
// patched config golden. containerd is on every machine kinc is developed
// on (apt-get install containerd); without it the test is skipped.
func TestContainerdReadsPatchedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containerd")
	}
	containerd, err := exec.LookPath("containerd")
	if err != nil {
		t.Skip("containerd is not installed")
	}
	path, _ := filepath.Abs(filepath.Join("testdata", "containerd", "patched.golden"))
	out, err := exec.Command(containerd, "--config", path, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, out)
	}
	for _, want := range []string{`endpoint = ["http://kind-registry:5000"]`, "enable_unprivileged_ports = true", "restrict_oom_score_adj = true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("containerd's view of the config lacks %q:\n%s", want, out)
		}
	}
}
