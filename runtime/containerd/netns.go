package containerd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A node's network namespace is pinned by a bind mount for as long as it is
// attached, so that the CNI teardown always runs inside it: the bridge
// plugin removes its masquerade rules only when it can read the addresses
// there, and a task that died on its own takes /proc/<pid>/ns/net with it.

// defaultRunDir holds the pins; it is a tmpfs, so a reboot, which also
// clears the iptables rules, clears the pins.
const defaultRunDir = "/run/kinc/containerd"

func (r *Runtime) netnsPin(name string) string {
	return filepath.Join(r.runDir, "netns", r.namespace+"-"+name)
}

// pinNetns bind-mounts the namespace at src onto a file at dst, replacing
// any stale pin there.
func pinNetns(src, dst string) error {
	if err := unpinNetns(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("pinning network namespace: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("pinning network namespace: %w", err)
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		os.Remove(dst)
		return fmt.Errorf("pinning network namespace %s: %w", src, err)
	}
	return nil
}

// unpinNetns releases a pin; a missing one is not an error.
func unpinNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpinning network namespace %q: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpinning network namespace %q: %w", path, err)
	}
	return nil
}

// isNetns tells whether path is a namespace file (a pin, or /proc/*/ns/net).
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
