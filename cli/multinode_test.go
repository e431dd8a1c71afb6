package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMultiNodeNetworking makes one control plane and two workers on the
// runtimes after the first (the first runs the HA test) and checks that a
// pod on each worker reaches a pod on the other, by every pod IP and by
// service. The clusters cover the other IP families: dual stack on the
// first of them, IPv6 only on the next.
func TestMultiNodeNetworking(t *testing.T) {
	if testing.Short() {
		t.Skip("creates real clusters")
	}
	rts := testRuntimes()
	if len(rts) > 1 {
		rts = rts[1:]
	}
	families := []string{"dual", "ipv6"}
	for i, rt := range rts {
		family := families[i%len(families)]
		cfg := `apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
nodes:
- role: control-plane
- role: worker
- role: worker
networking:
  ipFamily: ` + family + "\n"
		t.Run(rt+"-"+family, func(t *testing.T) {
			ensureNodeImage(t, rt)
			name := "e2e-multi-" + rt
			kc := filepath.Join(t.TempDir(), "config")
			freshCluster(t, rt, name, kc)
			start := time.Now()
			if code, out, errOut := run(t, cfg, "--runtime", rt, "create", "cluster", "--name", name, "--config", "-", "--kubeconfig", kc, "--wait", "6m"); code != 0 {
				t.Fatalf("create: exit %d\n%s\n%s", code, out, errOut)
			}
			t.Logf("1+2 create --wait took %s", time.Since(start).Round(time.Second))
			if code, _, errOut := run(t, "", "--runtime", rt, "load", "image-archive", helloArchive(t), "--name", name); code != 0 {
				t.Fatalf("load: exit %d: %s", code, errOut)
			}
			k := kubectl{t: t, bin: kubectlBinary(t), kubeconfig: kc, context: "kinc-" + name}
			var manifest strings.Builder
			for _, w := range []string{"worker", "worker2"} {
				fmt.Fprintf(&manifest, `apiVersion: v1
kind: Pod
metadata:
  name: hello-%[1]s
  labels: {app: hello-%[1]s}
spec:
  nodeName: %[2]s-%[1]s
  containers:
  - {name: hello, image: localhost/hello:1, imagePullPolicy: Never}
---
apiVersion: v1
kind: Service
metadata:
  name: hello-%[1]s
spec:
  selector: {app: hello-%[1]s}
  ports: [{port: 80, targetPort: 5000}]
---
`, w, name)
			}
			f := filepath.Join(t.TempDir(), "pods.yaml")
			os.WriteFile(f, []byte(manifest.String()), 0o644)
			k.must("apply", "-f", f)
			k.must("wait", "--for=condition=Ready", "pod/hello-worker", "pod/hello-worker2", "--timeout=3m")
			for _, pair := range [][2]string{{"worker", "worker2"}, {"worker2", "worker"}} {
				from, to := "hello-"+pair[0], "hello-"+pair[1]
				ips := strings.Fields(k.must("get", "pod", to, "-o", "jsonpath={.status.podIPs[*].ip}"))
				if want := map[string]int{"dual": 2, "ipv6": 1}[family]; len(ips) != want || family == "ipv6" && !strings.Contains(ips[0], ":") {
					t.Fatalf("pod %s has IPs %v, want %d for %s", to, ips, want, family)
				}
				urls := []string{"http://" + to + "/"}
				for _, ip := range ips {
					urls = append(urls, "http://"+net.JoinHostPort(ip, "5000")+"/")
				}
				for _, url := range urls {
					eventually(t, from+" -> "+url, time.Minute, func() error {
						out, err := k.run("exec", from, "--", "/hello", "get", url)
						if err != nil || !strings.Contains(out, "served from host : "+to) {
							return fmt.Errorf("%v: %s", err, out)
						}
						return nil
					})
				}
			}
			if code, _, errOut := run(t, "", "--runtime", rt, "delete", "cluster", "--name", name, "--kubeconfig", kc); code != 0 {
				t.Fatalf("delete: exit %d: %s", code, errOut)
			}
			assertGone(t, rt, name)
		})
	}
}
