package containerd

import (
	"os"
	"strconv"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd"

	"github.com/kinc-dev/kinc/runtime"
)

// The stop signal images name and the one kinc falls back on must agree.
func TestStopSignal(t *testing.T) {
	sig, err := containerd.ParseSignal(runtime.StopSignal)
	if err != nil || sig != stopSignal {
		t.Errorf("ParseSignal(%q) = %v, %v; want %v", runtime.StopSignal, sig, err, stopSignal)
	}
}

func TestNodeMounts(t *testing.T) {
	files := nodeFiles{varDir: "/state/var", hosts: "/state/hosts", resolvConf: "/state/resolv.conf", hostname: "/state/hostname"}
	spec := runtime.NodeSpec{Mounts: []runtime.Mount{
		{HostPath: "/src", ContainerPath: "/dst", ReadOnly: true, Propagation: runtime.PropagationHostToContainer},
		{HostPath: "/shared", ContainerPath: "/shared", Propagation: runtime.PropagationBidirectional},
	}}
	mounts, err := nodeMounts(spec, files)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range mounts {
		got[m.Destination] = m.Type + " " + m.Source + " " + strings.Join(m.Options, ",")
	}
	want := map[string]string{
		"/sys/fs/cgroup":   "cgroup cgroup nosuid,noexec,nodev,relatime,rw",
		"/run":             "tmpfs tmpfs nosuid,nodev,mode=755",
		"/tmp":             "tmpfs tmpfs nosuid,nodev,mode=1777",
		"/var":             "bind /state/var rbind,rw",
		"/etc/hosts":       "bind /state/hosts rbind,rw",
		"/etc/resolv.conf": "bind /state/resolv.conf rbind,rw",
		"/etc/hostname":    "bind /state/hostname rbind,rw",
		"/dst":             "bind /src rbind,ro,rslave",
		"/shared":          "bind /shared rbind,rw,rshared",
	}
	for dst, w := range want {
		if got[dst] != w {
			t.Errorf("mount %s = %q, want %q", dst, got[dst], w)
		}
	}
}

// Capabilities follow the process's bounding set bit by bit: this project's
// CI root lacks CAP_SYS_RESOURCE, and a node must then lack it too.
func TestBoundingCaps(t *testing.T) {
	caps, err := boundingCaps()
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var bnd uint64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			if bnd, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				t.Fatal(err)
			}
		}
	}
	have := map[string]bool{}
	for _, c := range caps {
		have[c] = true
	}
	for bit, name := range map[uint]string{0: "CAP_CHOWN", 12: "CAP_NET_ADMIN", 21: "CAP_SYS_ADMIN", 24: "CAP_SYS_RESOURCE"} {
		if want := bnd&(1<<bit) != 0; have[name] != want {
			t.Errorf("%s granted = %v, but the bounding set says %v", name, have[name], want)
		}
	}
}
