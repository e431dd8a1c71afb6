package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/runtime"
)

func TestExportLogsUsage(t *testing.T) {
	code, _, errOut := run(t, "", "export", "logs", "a", "b")
	if code != 2 || !strings.Contains(errOut, "name at most one directory") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	code, out, _ := run(t, "", "export", "--help")
	if code != 0 || !strings.Contains(out, "logs") || !strings.Contains(out, "kubeconfig") {
		t.Fatalf("export --help lacks logs or kubeconfig (exit %d):\n%s", code, out)
	}
}

// exportLogs is the real check of `kinc export logs` on a running
// single-node cluster: called by TestLoadAndExportLogs, which owns the
// cluster.
func exportLogs(t *testing.T, rt, name string) {
	dir := filepath.Join(t.TempDir(), "logs")
	start := time.Now()
	code, out, errOut := run(t, "", "--runtime", rt, "export", "logs", dir, "--name", name)
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("export logs: exit %d: %s", code, errOut)
	}
	if strings.TrimSpace(out) != dir {
		t.Errorf("printed %q, want the directory %s", out, dir)
	}
	if strings.Contains(errOut, "could not be collected") {
		t.Errorf("some logs were not collected:\n%s", errOut)
	}
	node := filepath.Join(dir, name+"-control-plane")
	read := func(rel string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(node, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for rel, want := range map[string]string{
		"kubelet.log":    "kubelet",
		"containerd.log": "containerd",
		"journal.log":    "systemd",
		"serial.log":     "systemd",
		"crictl-ps.txt":  "kube-apiserver",
		"images.txt":     "registry.k8s.io/pause",
	} {
		if got := read(rel); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q (%d bytes)", rel, want, len(got))
		}
	}
	var st runtime.NodeStatus
	if err := json.Unmarshal([]byte(read("inspect.json")), &st); err != nil || st.Name != name+"-control-plane" || st.State != runtime.StateRunning {
		t.Errorf("inspect.json: %v, %+v", err, st)
	}
	logs, err := os.ReadDir(filepath.Join(node, "containers"))
	if err != nil {
		t.Fatal(err)
	}
	var apiserver string
	for _, l := range logs {
		if strings.HasPrefix(l.Name(), "kube-apiserver-") {
			apiserver = read("containers/" + l.Name())
		}
	}
	if len(logs) < 4 || !strings.Contains(apiserver, "Serving securely") {
		t.Errorf("containers/ has %d logs; kube-apiserver's (%d bytes) lacks \"Serving securely\"", len(logs), len(apiserver))
	}
	if strings.Contains(apiserver, "level=warning") {
		t.Errorf("crictl's own warnings mixed into a container log:\n%.500s", apiserver)
	}
	var info runtime.Info
	data, _ := os.ReadFile(filepath.Join(dir, "runtime-info.json"))
	if err := json.Unmarshal(data, &info); err != nil || info.Name != rt {
		t.Errorf("runtime-info.json: %v, %s", err, data)
	}
	if v, _ := os.ReadFile(filepath.Join(dir, "kinc-version.txt")); !strings.Contains(string(v), "kinc "+version) {
		t.Errorf("kinc-version.txt: %q", v)
	}
	var size int64
	var files int
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if fi, err := d.Info(); err == nil && !d.IsDir() {
			size += fi.Size()
			files++
		}
		return nil
	})
	t.Logf("export logs: %d files, %d KiB in %s", files, size>>10, took.Round(time.Millisecond))

	code, _, errOut = run(t, "", "--runtime", rt, "export", "logs", "--name", name+"-absent")
	if code != 1 || !strings.Contains(errOut, `cluster "`+name+`-absent" not found`) {
		t.Errorf("export logs of a missing cluster: exit %d, %s", code, errOut)
	}
}
