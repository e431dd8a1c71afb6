package cli

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/nodeimage"
	"github.com/kinc-dev/kinc/runtime"
)

// TestNodeImageBoots loads the node image into every test runtime and
// checks inside a node made from it: systemd and containerd run, kubelet
// and kubeadm say their version, and every preloaded tarball imports under
// exactly the references kubeadm asks for, plus the CNI and storage images.
func TestNodeImageBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots real containers")
	}
	for _, rtName := range testRuntimes() {
		t.Run(rtName, func(t *testing.T) {
			ensureNodeImage(t, rtName)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			rt := openTestRuntime(t, rtName)
			name := "kinc-image-check-" + rtName
			// A node left by an aborted earlier run would clash.
			rt.DeleteNode(ctx, name)
			t.Cleanup(func() { rt.DeleteNode(context.Background(), name) })
			if _, err := rt.CreateNode(ctx, runtime.NodeSpec{Name: name, Image: nodeimage.DefaultImage, Hostname: name}); err != nil {
				t.Fatal(err)
			}
			sh := func(cmd string) string {
				t.Helper()
				var out bytes.Buffer
				if err := rt.Exec(ctx, name, runtime.ExecSpec{Cmd: []string{"sh", "-c", cmd}, Stdout: &out}); err != nil {
					t.Fatalf("%s: %v", cmd, err)
				}
				return strings.TrimSpace(out.String())
			}
			eventually(t, "systemd and containerd running", time.Minute, func() error {
				var out bytes.Buffer
				rt.Exec(ctx, name, runtime.ExecSpec{Cmd: []string{"sh", "-c", "systemctl is-system-running; systemctl is-active containerd"}, Stdout: &out})
				got := strings.Fields(out.String())
				if len(got) != 2 || (got[0] != "running" && got[0] != "degraded") || got[1] != "active" {
					return fmt.Errorf("systemd, containerd: %v", got)
				}
				return nil
			})
			v := nodeimage.DefaultKubernetesVersion
			if got := sh("kubelet --version"); got != "Kubernetes "+v {
				t.Errorf("kubelet --version: %q", got)
			}
			if got := sh("kubeadm version -o short"); got != v {
				t.Errorf("kubeadm version: %q", got)
			}
			if got := sh("cat /kind/version"); got != v {
				t.Errorf("/kind/version: %q", got)
			}
			sh("for f in /kind/images/*.tar; do ctr -n k8s.io images import --no-unpack $f >/dev/null || exit 1; done")
			var imported []string
			for _, ref := range strings.Fields(sh("ctr -n k8s.io images ls -q")) {
				if !strings.HasPrefix(ref, "sha256:") {
					imported = append(imported, ref)
				}
			}
			want := append(strings.Fields(sh("kubeadm config images list --kubernetes-version "+v)), nodeimage.FlannelImage, nodeimage.LocalPathImage)
			sort.Strings(imported)
			sort.Strings(want)
			if strings.Join(imported, " ") != strings.Join(want, " ") {
				t.Errorf("imported %v\nwant     %v", imported, want)
			}
		})
	}
}
