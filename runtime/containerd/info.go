package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kinc-dev/kinc/runtime"
)

// Info reports the daemon's version and what the host's cgroups allow.
func (r *Runtime) Info(ctx context.Context) (runtime.Info, error) {
	v, err := r.client.Version(r.ctx(ctx))
	if err != nil {
		return runtime.Info{}, fmt.Errorf("asking containerd at %q for its version: %w", r.address, mapErr(err))
	}
	info := runtime.Info{
		Name:          "containerd",
		Version:       v.Version,
		Socket:        r.address,
		Rootless:      rootless(),
		CgroupVersion: cgroupVersion("/sys/fs/cgroup"),
		// Client-created containers get cgroupfs paths (/<namespace>/<id>).
		CgroupDriver: "cgroupfs",
	}
	info.MemoryLimit, info.PidsLimit, info.CPUShares = cgroupControllers("/sys/fs/cgroup", info.CgroupVersion)
	return info, nil
}

// rootless is true when kinc runs as a user, or as the fake root inside
// rootlesskit (which sets ROOTLESSKIT_STATE_DIR).
func rootless() bool {
	return os.Geteuid() != 0 || os.Getenv("ROOTLESSKIT_STATE_DIR") != ""
}

func cgroupVersion(root string) int {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return 2
	}
	return 1
}

// cgroupControllers tells which limits the host can enforce: on v1 by the
// hierarchies mounted, on v2 by the controllers enabled at the root.
func cgroupControllers(root string, version int) (memory, pids, cpu bool) {
	if version == 2 {
		b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
		if err != nil {
			return false, false, false
		}
		have := map[string]bool{}
		for _, c := range strings.Fields(string(b)) {
			have[c] = true
		}
		return have["memory"], have["pids"], have["cpu"]
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(root, name))
		return err == nil
	}
	return exists("memory"), exists("pids"), exists("cpu")
}
