package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigFieldsInEffect makes a cluster whose config maps a NodePort to
// a free host port, mounts a host directory into the node, labels the node,
// enables an alpha API through featureGates and runtimeConfig and runs
// kube-proxy in nftables mode: the host port reaches the pod (through
// kube-proxy's nftables NodePort rules), which serves a file of the host
// directory through a hostPath volume, and a UDP NodePort answers through
// a mapped UDP host port; a host mount made later shows in the node
// (propagation HostToContainer); the node carries its label; the
// alpha API is served and every component got the gate; the dnsSearch
// domain reaches the node's and the pods' resolv.conf.
func TestConfigFieldsInEffect(t *testing.T) {
	if testing.Short() {
		t.Skip("creates real clusters")
	}
	rt := testRuntimes()[0]
	ensureNodeImage(t, rt)
	shared, propagated := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "greeting.txt"), []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
nodes:
- role: control-plane
  labels:
    kinc.dev/test: fields
  extraMounts:
  - hostPath: %s
    containerPath: /shared
    readOnly: true
  - hostPath: %s
    containerPath: /propagated
    propagation: HostToContainer
  extraPortMappings:
  - containerPort: 30080
    hostPort: 0
    listenAddress: 127.0.0.1
  - containerPort: 30053
    hostPort: 0
    listenAddress: 127.0.0.1
    protocol: UDP
  kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      kubeletExtraArgs:
        node-labels: "kinc.dev/patched=node-level"
networking:
  kubeProxyMode: nftables
  dnsSearch: [kinc.example]
  podSubnet: 10.245.0.0/16
  serviceSubnet: 10.97.0.0/16
kubeadmConfigPatchesJSON6902:
- group: kubeadm.k8s.io
  version: v1beta4
  kind: ClusterConfiguration
  patch: |
    - op: add
      path: /apiServer/extraArgs/-
      value: {name: event-ttl, value: 2h0m0s}
featureGates:
  ClusterTrustBundle: true
runtimeConfig:
  certificates.k8s.io/v1alpha1: "true"
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri"]
    max_container_log_line_size = 12345
containerdConfigPatchesJSON6902:
- '[{"op": "add", "path": "/plugins/io.containerd.grpc.v1.cri/max_concurrent_downloads", "value": 7}]'
`, shared, propagated)
	name := "e2e-fields"
	kc := filepath.Join(t.TempDir(), "config")
	freshCluster(t, rt, name, kc)
	if code, out, errOut := run(t, cfg, "--runtime", rt, "create", "cluster", "--name", name, "--config", "-", "--kubeconfig", kc, "--wait", "5m"); code != 0 {
		t.Fatalf("create: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"max_container_log_line_size = 12345", "max_concurrent_downloads = 7"} {
		if out, err := execIn(rt, name+"-control-plane", "grep", "-c", want, "/etc/containerd/config.toml"); err != nil || strings.TrimSpace(out) != "1" {
			t.Errorf("containerd config patch (%s) not applied: %v %q", want, err, out)
		}
	}
	k := kubectl{t: t, bin: kubectlBinary(t), kubeconfig: kc, context: "kinc-" + name}
	for _, label := range []string{"kinc.dev/test=fields", "kinc.dev/patched=node-level"} {
		if got := k.must("get", "nodes", "-l", label, "-o", "name"); !strings.Contains(got, name+"-control-plane") {
			t.Errorf("node label %s not set (labels, or the node-level kubeadm patch): %q", label, got)
		}
	}
	// featureGates and runtimeConfig: the alpha API needs both to be served.
	if got := k.must("api-resources", "--api-group=certificates.k8s.io", "-o", "name"); !strings.Contains(got, "clustertrustbundles.certificates.k8s.io") {
		t.Errorf("ClusterTrustBundle API not served (featureGates/runtimeConfig not in effect):\n%s", got)
	}
	cp := name + "-control-plane"
	const manifests = "/etc/kubernetes/manifests/"
	for _, c := range []struct{ file, want string }{
		{manifests + "kube-apiserver.yaml", "--runtime-config=certificates.k8s.io/v1alpha1=true"},
		{manifests + "kube-apiserver.yaml", "--event-ttl=2h0m0s"}, // the JSON 6902 patch
		{manifests + "kube-controller-manager.yaml", "--feature-gates=ClusterTrustBundle=true"},
		{manifests + "kube-controller-manager.yaml", "--cluster-cidr=10.245.0.0/16"}, // podSubnet
		{manifests + "kube-scheduler.yaml", "--feature-gates=ClusterTrustBundle=true"},
		{"/var/lib/kubelet/config.yaml", "ClusterTrustBundle: true"},
	} {
		if out, err := execIn(rt, cp, "cat", c.file); err != nil || !strings.Contains(out, c.want) {
			t.Errorf("%s lacks %s: %v", c.file, c.want, err)
		}
	}
	// dnsSearch: the node's resolv.conf, and through kubelet the pods'.
	if out, err := execIn(rt, cp, "cat", "/etc/resolv.conf"); err != nil || !strings.Contains(out, "search kinc.example\n") {
		t.Errorf("node resolv.conf lacks the dnsSearch domain: %v\n%s", err, out)
	}
	proxyConf := k.must("-n", "kube-system", "get", "configmap", "kube-proxy", "-o", "jsonpath={.data.config\\.conf}")
	if !strings.Contains(proxyConf, "mode: nftables") || !strings.Contains(proxyConf, "ClusterTrustBundle: true") {
		t.Errorf("kube-proxy config lacks nftables mode or the gate:\n%s", proxyConf)
	}
	eventually(t, "kube-proxy's nftables table", 2*time.Minute, func() error {
		out, err := execIn(rt, cp, "nft", "list", "table", "ip", "kube-proxy")
		if err != nil || !strings.Contains(out, "nodeport") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if code, _, errOut := run(t, "", "--runtime", rt, "load", "image-archive", helloArchive(t), "--name", name); code != 0 {
		t.Fatalf("load: exit %d: %s", code, errOut)
	}
	const manifest = `apiVersion: v1
kind: Pod
metadata:
  name: files
  labels: {app: files}
spec:
  containers:
  - name: hello
    image: localhost/hello:1
    imagePullPolicy: Never
    volumeMounts: [{name: shared, mountPath: /data}]
  volumes:
  - name: shared
    hostPath: {path: /shared}
---
apiVersion: v1
kind: Service
metadata:
  name: files
spec:
  type: NodePort
  selector: {app: files}
  ports:
  - {name: http, port: 80, targetPort: 5000, nodePort: 30080}
  - {name: echo, protocol: UDP, port: 53, targetPort: 5001, nodePort: 30053}
`
	f := filepath.Join(t.TempDir(), "files.yaml")
	os.WriteFile(f, []byte(manifest), 0o644)
	k.must("apply", "-f", f)
	k.must("wait", "--for=condition=Ready", "pod/files", "--timeout=3m")
	if ip := k.must("get", "pod", "files", "-o", "jsonpath={.status.podIP}"); !strings.HasPrefix(ip, "10.245.") {
		t.Errorf("pod IP %s is not in podSubnet 10.245.0.0/16", ip)
	}
	if ip := k.must("get", "service", "files", "-o", "jsonpath={.spec.clusterIP}"); !strings.HasPrefix(ip, "10.97.") {
		t.Errorf("service IP %s is not in serviceSubnet 10.97.0.0/16", ip)
	}
	if out, err := execIn(rt, cp, "sh", "-c", "cat /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/*/resolv.conf"); err != nil || !strings.Contains(out, "cluster.local kinc.example") {
		t.Errorf("pods' resolv.conf lacks the dnsSearch domain: %v\n%s", err, out)
	}

	// The host port was picked at create time: the runtime reports it.
	st, err := openTestRuntime(t, rt).InspectNode(context.Background(), name+"-control-plane")
	if err != nil {
		t.Fatal(err)
	}
	hostPort, udpPort := 0, 0
	for _, p := range st.Ports {
		switch {
		case p.ContainerPort == 30080:
			hostPort = p.HostPort
		case p.ContainerPort == 30053 && p.Protocol == "udp":
			udpPort = p.HostPort
		}
	}
	if hostPort == 0 || udpPort == 0 {
		t.Fatalf("no host port for 30080/tcp or 30053/udp in %+v", st.Ports)
	}
	_, wide, _ := run(t, "", "--runtime", rt, "get", "nodes", "--name", name, "-o", "wide")
	if !strings.Contains(wide, fmt.Sprintf("127.0.0.1:%d->30080/tcp", hostPort)) {
		t.Errorf("get nodes -o wide does not show the mapped port %d:\n%s", hostPort, wide)
	}
	eventually(t, "the host file through the mapped port", time.Minute, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/files/greeting.txt", hostPort))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "hello from the host\n" {
			return fmt.Errorf("status %d, body %q", resp.StatusCode, body)
		}
		return nil
	})
	eventually(t, "the UDP NodePort through the mapped UDP port", time.Minute, func() error {
		conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", udpPort))
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != "files\n" {
			return fmt.Errorf("reply %q: %v", buf[:n], err)
		}
		return nil
	})

	// HostToContainer: a mount made on the host after the node started
	// shows inside the node.
	sub := filepath.Join(propagated, "sub")
	os.Mkdir(sub, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "kinc-test", sub).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs on the host: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", sub).Run() })
	os.WriteFile(filepath.Join(sub, "late.txt"), []byte("mounted later\n"), 0o644)
	if out, err := execIn(rt, cp, "cat", "/propagated/sub/late.txt"); err != nil || out != "mounted later\n" {
		t.Errorf("a host mount made after create is not seen in the node (propagation HostToContainer): %v %q", err, out)
	}
}
