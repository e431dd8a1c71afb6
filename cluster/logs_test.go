package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kinc-dev/kinc/runtime"
)

func TestParseCrictlPS(t *testing.T) {
	// testdata/crictl-ps.json: two containers of a real node's `crictl ps -a -o json`.
	data, err := os.ReadFile("testdata/crictl-ps.json")
	if err != nil {
		t.Fatal(err)
	}
	list, err := parseCrictlPS(data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range list {
		got = append(got, c.logName())
	}
	want := []string{
		"kinc-flannel-xzq9d_kube-system_flanneld-3-82bade6ee6048.log",
		"kube-proxy-jv994_kube-system_kube-proxy-0-a222b7355f876.log",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseCrictlPS([]byte("time=... level=warning")); err == nil {
		t.Error("no error on output that is not JSON")
	}
}

func TestLogName(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    criContainer
		want string
	}{
		{"short id", criContainer{ID: "abc", Labels: map[string]string{"io.kubernetes.pod.name": "p", "io.kubernetes.pod.namespace": "ns"}}, "p_ns_-0-abc.log"},
		{"no path escape", criContainer{ID: "0123456789abcdef", Labels: map[string]string{"io.kubernetes.pod.name": "../../etc", "io.kubernetes.pod.namespace": "a/b c"}}, "..-..-etc_a-b-c_-0-0123456789abc.log"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.logName()
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "/") {
				t.Errorf("%q has a slash", got)
			}
		})
	}
}

// nodeCommands answers the commands export logs runs in a node; failing
// names the commands (by their start) that fail.
func nodeCommands(failing ...string) func(string, []string) (string, error) {
	ps, _ := os.ReadFile("testdata/crictl-ps.json")
	return func(node string, cmd []string) (string, error) {
		line := strings.Join(cmd, " ")
		line = strings.Replace(line, strings.Join(crictl(), " "), "crictl", 1)
		for _, f := range failing {
			if strings.HasPrefix(line, f) {
				return "partial output\n", &runtime.ExitError{Container: node, Cmd: cmd, Code: 1}
			}
		}
		switch {
		case line == "crictl ps -a -o json":
			return string(ps), nil
		case line == "test -f "+KubeadmLogPath && node != "c-control-plane":
			// only the control plane kept kubeadm's output
			return "", &runtime.ExitError{Container: node, Cmd: cmd, Code: 1}
		}
		return "output of " + line + " in " + node + "\n", nil
	}
}

// tree lists the files under dir, relative, with a slash.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(files)
	return files
}

func TestExportLogs(t *testing.T) {
	nodes := twoNodes()
	nodes[1].State = runtime.StateStopped // c-worker
	rt := &scriptedRuntime{info: runtime.Info{Name: "podman", Version: "4.3.1"}, nodes: nodes,
		exec: nodeCommands("journalctl --no-pager --unit=containerd.service", "crictl logs a222b7355f876")}
	dir := filepath.Join(t.TempDir(), "logs")
	report, err := ExportLogs(context.Background(), rt, "c", dir, "kinc v0.1.0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"c-control-plane/containerd.log",
		"c-control-plane/containers/kinc-flannel-xzq9d_kube-system_flanneld-3-82bade6ee6048.log",
		"c-control-plane/containers/kube-proxy-jv994_kube-system_kube-proxy-0-a222b7355f876.log",
		"c-control-plane/crictl-ps.txt",
		"c-control-plane/images.txt",
		"c-control-plane/inspect.json",
		"c-control-plane/journal.log",
		"c-control-plane/kubeadm.log",
		"c-control-plane/kubelet.log",
		"c-control-plane/serial.log",
		// the load balancer runs no kubelet or containers
		"c-external-load-balancer/inspect.json",
		"c-external-load-balancer/journal.log",
		"c-external-load-balancer/serial.log",
		// a stopped node: only what the runtime knows
		"c-worker/inspect.json",
		"c-worker/serial.log",
		"kinc-version.txt",
		"runtime-info.json",
	}
	if got := tree(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantFailed := []string{"c-control-plane/containerd.log", "c-control-plane/containers/kube-proxy-jv994_kube-system_kube-proxy-0-a222b7355f876.log"}
	if strings.Join(report.Failed, " ") != strings.Join(wantFailed, " ") {
		t.Errorf("failed %v, want %v", report.Failed, wantFailed)
	}
	read := func(rel string) string {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	for rel, want := range map[string]string{
		"kinc-version.txt":                     "kinc v0.1.0\n",
		"c-control-plane/kubelet.log":          "output of journalctl --no-pager --unit=kubelet.service in c-control-plane\n",
		"c-control-plane/serial.log":           "systemd booting in c-control-plane\n",
		"c-control-plane/kubeadm.log":          "output of cat /kind/kubeadm.log in c-control-plane\n",
		"c-control-plane/containerd.log":       "partial output\n\nkinc: collecting c-control-plane/containerd.log failed: command \"journalctl --no-pager --unit=containerd.service\" in c-control-plane exited with code 1\n",
		"c-external-load-balancer/journal.log": "output of journalctl --no-pager in c-external-load-balancer\n",
	} {
		if got := read(rel); got != want {
			t.Errorf("%s: got %q, want %q", rel, got, want)
		}
	}
	var info runtime.Info
	if err := json.Unmarshal([]byte(read("runtime-info.json")), &info); err != nil || info.Version != "4.3.1" {
		t.Errorf("runtime-info.json: %v %+v", err, info)
	}
	var st runtime.NodeStatus
	if err := json.Unmarshal([]byte(read("c-worker/inspect.json")), &st); err != nil || st.State != runtime.StateStopped {
		t.Errorf("c-worker/inspect.json: %v %+v", err, st)
	}
	if n := len(rt.ran("c-worker:")); n != 0 {
		t.Errorf("ran commands in a stopped node: %v", rt.ran("c-worker:"))
	}
}

func TestExportLogsNoCluster(t *testing.T) {
	rt := &scriptedRuntime{nodes: twoNodes()}
	dir := filepath.Join(t.TempDir(), "logs")
	_, err := ExportLogs(context.Background(), rt, "nope", dir, "")
	if !errors.Is(err, runtime.ErrNotFound) || !strings.Contains(err.Error(), `cluster "nope" not found`) {
		t.Fatalf("error %v, want cluster not found", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s made for a missing cluster", dir)
	}
}
