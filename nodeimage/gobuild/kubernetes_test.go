package gobuild

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKubernetesKubeadm builds kubeadm through the proxy into the shared
// cache (the first run takes minutes) and checks it reports the version a
// release binary reports.
func TestKubernetesKubeadm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Kubernetes from the Go module proxy")
	}
	ctx := context.Background()
	start := time.Now()
	bins, err := Kubernetes(ctx, "v1.34.4", []string{"kubeadm"}, WithLog(testLog{t}))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first call: %s", time.Since(start))
	out, err := exec.Command(bins["kubeadm"], "version", "-o", "short").CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "v1.34.4" {
		t.Errorf("kubeadm version -o short = %q, want v1.34.4", got)
	}
	out, err = exec.Command(bins["kubeadm"], "version", "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("kubeadm version: %v\n%s", err, out)
	}
	for _, want := range []string{`"gitTreeState": "clean"`, `"buildDate": "2026-02-10T12:53:36Z"`, `"minor": "34"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubeadm version -o json lacks %s:\n%s", want, out)
		}
	}

	start = time.Now()
	again, err := Kubernetes(ctx, "v1.34.4", []string{"kubeadm"})
	if err != nil {
		t.Fatal(err)
	}
	if again["kubeadm"] != bins["kubeadm"] {
		t.Errorf("second call gave %s, first %s", again["kubeadm"], bins["kubeadm"])
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cached call took %s", d)
	}
}

func TestKubernetesUnknownVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("asks the Go module proxy")
	}
	cache := t.TempDir()
	_, err := Kubernetes(context.Background(), "v1.34.99", []string{"kubeadm"}, WithCacheDir(cache))
	var unavailable *UnavailableError
	if !errors.As(err, &unavailable) {
		t.Fatalf("err = %v, want *UnavailableError", err)
	}
	if want := "Kubernetes v1.34.99 is not available from the Go module proxy: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want prefix %q", err, want)
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		t.Errorf("cache holds %s after a failed build", filepath.Join(cache, e.Name()))
	}
}

func TestKubernetesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, version string
		components    []string
		want          string
	}{
		{"no v", "1.34.4", nil, `version "1.34.4" is not of the form vX.Y.Z`},
		{"two parts", "v1.34", nil, `version "v1.34" is not of the form vX.Y.Z`},
		{"unknown component", "v1.34.4", []string{"kube-dns"}, `unknown component "kube-dns"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Kubernetes(context.Background(), tc.version, tc.components, WithCacheDir(t.TempDir()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %s", err, tc.want)
			}
		})
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestKubernetesAll builds every component one after the other, so the log
// shows what each costs (cold: the first run on a machine; warm: the next).
func TestKubernetesAll(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Kubernetes from the Go module proxy")
	}
	ctx := context.Background()
	for _, c := range Components {
		start := time.Now()
		bins, err := Kubernetes(ctx, "v1.34.4", []string{c})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", c, time.Since(start).Round(time.Second))
		out, err := exec.Command(bins[c], "--version").CombinedOutput()
		if c == "kubeadm" {
			out, err = exec.Command(bins[c], "version", "-o", "short").CombinedOutput()
		}
		if c == "kubectl" {
			out, err = exec.Command(bins[c], "version", "--client").CombinedOutput()
		}
		if err != nil || !strings.Contains(string(out), "v1.34.4") {
			t.Errorf("%s does not report v1.34.4 (%v):\n%s", c, err, out)
		}
	}
}

// TestKubernetesReproducible rebuilds kubeadm into an empty binary cache
// (the Go build cache stays warm) and wants the very same bytes as the
// shared cache holds: rebuilding must not change a node image.
func TestKubernetesReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Kubernetes from the Go module proxy")
	}
	ctx := context.Background()
	shared, err := Kubernetes(ctx, "v1.34.4", []string{"kubeadm"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	fresh, err := Kubernetes(ctx, "v1.34.4", []string{"kubeadm"}, WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubeadm rebuilt with a warm Go build cache in %s", time.Since(start).Round(time.Second))
	a, _ := os.ReadFile(shared["kubeadm"])
	b, _ := os.ReadFile(fresh["kubeadm"])
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("kubeadm rebuilt differs from the cached one (%d and %d bytes)", len(a), len(b))
	}
}
