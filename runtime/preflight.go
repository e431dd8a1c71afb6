package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrPreflight is what a failed rootless preflight wraps: the host cannot run
// rootless nodes until the listed fixes are applied.
var ErrPreflight = errors.New("rootless preflight failed")

// Level says how much a preflight check matters.
type Level string

const (
	LevelOK      Level = "ok"
	LevelError   Level = "error"   // create refuses to start
	LevelWarning Level = "warning" // printed; clusters may misbehave
	// LevelNote is a check that would be an error for a rootless runtime,
	// shown for a rootful one so that users know what rootless would need.
	LevelNote Level = "note"
	LevelSkip Level = "skipped"
)

// Check is one preflight check's outcome.
type Check struct {
	Name   string `json:"name"`
	Level  Level  `json:"level"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// String is the check as one line: what is wrong, then how to fix it.
func (c Check) String() string {
	s := c.Name + ": " + c.Detail
	if c.Fix != "" && c.Level != LevelOK && c.Level != LevelSkip {
		s += "; fix: " + c.Fix
	}
	return s
}

// Report is every check of one preflight, in a stable order.
type Report []Check

// Filter returns the checks at level l.
func (r Report) Filter(l Level) Report {
	var out Report
	for _, c := range r {
		if c.Level == l {
			out = append(out, c)
		}
	}
	return out
}

// Err is nil unless a check is at LevelError; then one error lists each
// failed check, one line each, with its fix.
func (r Report) Err() error {
	failed := r.Filter(LevelError)
	if len(failed) == 0 {
		return nil
	}
	var b strings.Builder
	for _, c := range failed {
		b.WriteString("\n  - " + c.String())
	}
	return fmt.Errorf("%w: this host cannot run rootless nodes until these are fixed:%s", ErrPreflight, b.String())
}

// PreflightOption tunes Preflight.
type PreflightOption func(*preflightOptions) error

type preflightOptions struct {
	root          string
	uid           int
	user          string
	userSet       bool
	hostPorts     []int
	storageDriver string
	// stat reports a path's owner and mode; tests replace it because git
	// keeps neither for fixtures.
	stat func(path string) (uid int, mode fs.FileMode, err error)
}

// WithHostRoot reads /proc, /sys, /etc and /dev beneath dir instead of /.
func WithHostRoot(dir string) PreflightOption {
	return func(o *preflightOptions) error { o.root = dir; return nil }
}

// WithUser checks for the user uid called name (default: the owner of a
// rootless runtime's /run/user/UID socket, else the current user; the name
// from the host's /etc/passwd).
func WithUser(uid int, name string) PreflightOption {
	return func(o *preflightOptions) error {
		if uid < 0 {
			return fmt.Errorf("uid %d: %w", uid, ErrInvalid)
		}
		o.uid, o.user, o.userSet = uid, name, true
		return nil
	}
}

// WithHostPorts are the host ports the cluster publishes (0 means any and
// is ignored).
func WithHostPorts(ports ...int) PreflightOption {
	return func(o *preflightOptions) error { o.hostPorts = append(o.hostPorts, ports...); return nil }
}

// WithStorageDriver is the runtime's storage driver when it says
// ("overlay", "fuse-overlayfs", "vfs"...); unknown makes /dev/fuse a warning.
func WithStorageDriver(driver string) PreflightOption {
	return func(o *preflightOptions) error { o.storageDriver = driver; return nil }
}

// Preflight checks what rootless nodes need from the host, for the runtime
// described by info. For a rootless runtime failed checks are errors or
// warnings; for a rootful one, what only rootless needs comes as notes.
func Preflight(info Info, opts ...PreflightOption) (Report, error) {
	o := preflightOptions{root: "/", uid: os.Getuid(), user: "", stat: statOwnerMode}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if !o.userSet && info.Rootless {
		// The daemon's user is the one that matters; a rootless socket
		// names it even when kinc runs as root.
		if uid, ok := runtimeDirUID(info.Socket); ok {
			o.uid = uid
		}
	}
	if o.user == "" {
		o.user = userName(o.root, o.uid)
	}
	// A remote daemon's host is not this one.
	if i := strings.Index(info.Socket, "://"); i > 0 {
		if scheme := info.Socket[:i]; scheme == "tcp" || scheme == "ssh" || scheme == "http" || scheme == "https" {
			return Report{{Name: "host", Level: LevelSkip, Detail: fmt.Sprintf("%s is remote (%s): its host is not checked", info.Name, info.Socket)}}, nil
		}
	}
	h := hostView{preflightOptions: o, rootless: info.Rootless}
	v2 := h.cgroupV2()
	r := Report{v2}
	r = append(r, h.delegation(v2.Level == LevelOK))
	r = append(r, h.userns(), h.idmap())
	r = append(r, h.subids("subuid"), h.subids("subgid"))
	r = append(r, h.fuse(), h.tun(), h.ports())
	r = append(r, h.inotify("max_user_watches", 524288), h.inotify("max_user_instances", 512))
	return r, nil
}

// hostView runs the checks against one host tree.
type hostView struct {
	preflightOptions
	rootless bool
}

func (h hostView) path(p string) string { return filepath.Join(h.root, p) }

// rootlessOnly turns a rootless error into a note for rootful runtimes.
func (h hostView) rootlessOnly(c Check) Check {
	if !h.rootless && c.Level == LevelError {
		c.Level = LevelNote
		c.Detail += " (matters only for rootless)"
	}
	return c
}

const kernelV2Fix = "boot with the unified cgroup v2 hierarchy: add systemd.unified_cgroup_hierarchy=1 to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot"

func (h hostView) cgroupV2() Check {
	c := Check{Name: "cgroup v2", Level: LevelOK, Detail: "/sys/fs/cgroup is cgroup v2"}
	var st unix.Statfs_t
	magic := unix.Statfs(h.path("/sys/fs/cgroup"), &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	if magic || exists(h.path("/sys/fs/cgroup/cgroup.controllers")) {
		return c
	}
	c.Level, c.Fix = LevelError, kernelV2Fix
	c.Detail = "/sys/fs/cgroup is cgroup v1; rootless nodes need cgroup v2"
	if exists(h.path("/sys/fs/cgroup/unified/cgroup.controllers")) {
		c.Detail = "/sys/fs/cgroup is cgroup v1 (hybrid: v2 at /sys/fs/cgroup/unified holds no cpu/memory/pids controllers); rootless nodes need cgroup v2"
	}
	if cmdline, err := os.ReadFile(h.path("/proc/cmdline")); err == nil && strings.Contains(string(cmdline), "systemd.unified_cgroup_hierarchy=0") {
		c.Fix = "remove systemd.unified_cgroup_hierarchy=0 from the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot"
	}
	return h.rootlessOnly(c)
}

const delegateFix = "delegate them with a systemd drop-in: printf '[Service]\\nDelegate=cpu cpuset io memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf (mkdir -p the directory first), then systemctl daemon-reload and log in again; or run kinc under `systemd-run --user --scope -p Delegate=yes kinc create cluster`"

// delegation checks that the user's cgroup carries the cpu, memory and pids
// controllers and belongs to the user: rootless runtimes can only limit,
// and systemd in a node can only manage, what is delegated to them.
func (h hostView) delegation(v2 bool) Check {
	c := Check{Name: "cgroup delegation", Level: LevelSkip, Detail: "needs cgroup v2 first"}
	if !v2 {
		return c
	}
	if h.uid == 0 {
		c.Detail = "running as root: nothing to delegate"
		return c
	}
	// systemd's user manager is what rootless runtimes create their cgroups
	// under; without it, the process's own cgroup is all there is.
	rel := fmt.Sprintf("/user.slice/user-%d.slice/user@%d.service", h.uid, h.uid)
	if !exists(h.path("/sys/fs/cgroup" + rel)) {
		own, err := ownCgroup(h.path("/proc/self/cgroup"))
		if err != nil {
			return Check{Name: c.Name, Level: LevelWarning, Detail: fmt.Sprintf("cannot tell the user's cgroup: %v", err)}
		}
		rel = own
	}
	dir := h.path("/sys/fs/cgroup" + rel)
	c.Fix = delegateFix
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		c.Level, c.Detail = LevelError, fmt.Sprintf("cannot read the user's cgroup %s: %v", rel, err)
		return h.rootlessOnly(c)
	}
	have := map[string]bool{}
	for _, f := range strings.Fields(string(b)) {
		have[f] = true
	}
	var missing []string
	for _, want := range []string{"cpu", "memory", "pids"} {
		if !have[want] {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		c.Level = LevelError
		c.Detail = fmt.Sprintf("controllers %s are not delegated to %s (%s/cgroup.controllers: %q)", strings.Join(missing, ", "), h.user, rel, strings.TrimSpace(string(b)))
		return h.rootlessOnly(c)
	}
	if owner, _, err := h.stat(dir); err == nil && owner != h.uid {
		c.Level = LevelError
		c.Detail = fmt.Sprintf("the user's cgroup %s belongs to uid %d, not to %s (uid %d): it is not delegated", rel, owner, h.user, h.uid)
		return h.rootlessOnly(c)
	}
	c.Level, c.Fix = LevelOK, ""
	c.Detail = fmt.Sprintf("cpu, memory and pids delegated to %s at %s", h.user, rel)
	return c
}

// ownCgroup is the cgroup v2 path in a /proc/PID/cgroup file.
func ownCgroup(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest, nil
		}
	}
	return "", fmt.Errorf("no cgroup v2 entry in %s", file)
}

// userns checks that users may create user namespaces, which every
// rootless runtime starts with.
func (h hostView) userns() Check {
	c := Check{Name: "user namespaces", Level: LevelOK, Detail: "users may create them"}
	if h.uid == 0 {
		c.Level, c.Detail = LevelSkip, "running as root"
		return c
	}
	if n, err := readInt(h.path("/proc/sys/user/max_user_namespaces")); err == nil && n == 0 {
		c.Level, c.Detail, c.Fix = LevelError, "user.max_user_namespaces is 0", "sysctl -w user.max_user_namespaces=28633"
	} else if n, err := readInt(h.path("/proc/sys/kernel/unprivileged_userns_clone")); err == nil && n == 0 {
		c.Level, c.Detail, c.Fix = LevelError, "kernel.unprivileged_userns_clone is 0", "sysctl -w kernel.unprivileged_userns_clone=1"
	} else if n, err := readInt(h.path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")); err == nil && n == 1 {
		// Distribution packages of podman and rootlesskit ship an AppArmor
		// profile allowing them; binaries from elsewhere are refused.
		c.Level, c.Detail = LevelWarning, "kernel.apparmor_restrict_unprivileged_userns is 1: only runtimes with an AppArmor profile allowing userns may create them"
		c.Fix = "use the distribution's runtime packages, or add an AppArmor profile with `userns,` for the runtime"
	}
	return h.rootlessOnly(c)
}

// idmap checks for newuidmap and newgidmap: without them a rootless runtime
// maps one id only, and a node's system users cannot exist.
func (h hostView) idmap() Check {
	c := Check{Name: "newuidmap", Level: LevelOK, Detail: "newuidmap and newgidmap present"}
	if h.uid == 0 {
		c.Level, c.Detail = LevelSkip, "running as root"
		return c
	}
	var missing []string
	for _, bin := range []string{"newuidmap", "newgidmap"} {
		found := false
		for _, dir := range []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"} {
			if exists(h.path(filepath.Join(dir, bin))) {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		c.Level = LevelError
		c.Detail = strings.Join(missing, " and ") + " not found in /usr/bin, /bin, /usr/sbin, /sbin or /usr/local/bin"
		c.Fix = "install them: apt-get install uidmap (Debian, Ubuntu), dnf install shadow-utils (Fedora), pacman -S shadow (Arch)"
	}
	return h.rootlessOnly(c)
}

// subids checks /etc/subuid or /etc/subgid for at least 65536 ids: a node
// maps a full 16-bit range of users into its user namespace.
func (h hostView) subids(kind string) Check {
	const need = 65536
	c := Check{Name: kind, Level: LevelOK}
	file := "/etc/" + kind
	if h.uid == 0 {
		c.Level, c.Detail = LevelSkip, "running as root: no subordinate ids needed"
		return c
	}
	flag := "--add-subuids"
	if kind == "subgid" {
		flag = "--add-subgids"
	}
	total, end, err := subidRanges(h.path(file), h.user, h.uid)
	start := max(end, 100000)
	c.Fix = fmt.Sprintf("usermod %s %d-%d %s", flag, start, start+need-1, h.user)
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		c.Level, c.Detail = LevelError, fmt.Sprintf("reading %s: %v", file, err)
	case total == 0:
		c.Level, c.Detail = LevelError, fmt.Sprintf("%s has no range for %s (uid %d)", file, h.user, h.uid)
	case total < need:
		c.Level, c.Detail = LevelError, fmt.Sprintf("%s gives %s only %d ids, nodes need %d", file, h.user, total, need)
	default:
		c.Detail, c.Fix = fmt.Sprintf("%s gives %s %d ids", file, h.user, total), ""
	}
	return h.rootlessOnly(c)
}

// subidRanges sums the ids a subuid/subgid file gives the user (by name or
// uid) and returns the end of the highest range of anyone, so that a fix
// can suggest a range that overlaps nobody's.
func subidRanges(file, user string, uid int) (total, end int, err error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(parts) != 3 || strings.HasPrefix(parts[0], "#") {
			continue
		}
		start, err1 := strconv.Atoi(parts[1])
		count, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || count <= 0 {
			continue
		}
		end = max(end, start+count)
		if parts[0] == user || parts[0] == strconv.Itoa(uid) {
			total += count
		}
	}
	return total, end, s.Err()
}

// fuse checks /dev/fuse where fuse-overlayfs needs it: an error when the
// runtime says it uses fuse-overlayfs, a warning when it does not say.
func (h hostView) fuse() Check {
	c := Check{Name: "/dev/fuse", Level: LevelOK}
	switch h.storageDriver {
	case "":
	case "fuse-overlayfs":
	default:
		c.Detail = fmt.Sprintf("storage driver %s does not need it", h.storageDriver)
		return c
	}
	usable, why := h.device("/dev/fuse")
	if usable {
		c.Detail = "present and usable"
		return c
	}
	c.Detail = why + ": fuse-overlayfs cannot work"
	c.Fix = "modprobe fuse; chmod 0666 /dev/fuse (or install the fuse3 package, whose udev rule does it)"
	c.Level = LevelError
	if h.storageDriver == "" {
		c.Level = LevelWarning
		c.Detail += " (needed only when the runtime uses fuse-overlayfs)"
	}
	if !h.rootless {
		c.Level, c.Detail = LevelNote, c.Detail+" (matters only for rootless)"
	}
	return c
}

// tun checks /dev/net/tun: rootless networking (slirp4netns, pasta,
// rootlesskit) builds its tap device on it.
func (h hostView) tun() Check {
	c := Check{Name: "/dev/net/tun", Level: LevelOK, Detail: "present and usable"}
	if usable, why := h.device("/dev/net/tun"); !usable {
		c.Level = LevelError
		c.Detail = why + ": rootless networking (slirp4netns, pasta) cannot publish ports"
		c.Fix = "modprobe tun; chmod 0666 /dev/net/tun"
	}
	return h.rootlessOnly(c)
}

// device tells whether the user can open a device for reading and writing.
func (h hostView) device(dev string) (bool, string) {
	owner, mode, err := h.stat(h.path(dev))
	if err != nil {
		return false, dev + " is missing"
	}
	if h.uid == 0 || mode.Perm()&0o006 == 0o006 || (owner == h.uid && mode.Perm()&0o600 == 0o600) {
		return true, ""
	}
	return false, fmt.Sprintf("%s is not readable and writable by %s (mode %04o, owner uid %d)", dev, h.user, mode.Perm(), owner)
}

// ports checks the cluster's host ports against the lowest port users may
// bind.
func (h hostView) ports() Check {
	c := Check{Name: "host ports", Level: LevelOK}
	var ports []int
	for _, p := range h.hostPorts {
		if p > 0 {
			ports = append(ports, p)
		}
	}
	if !h.rootless {
		c.Level, c.Detail = LevelSkip, "a rootful runtime binds any port"
		return c
	}
	if len(ports) == 0 {
		c.Level, c.Detail = LevelSkip, "no fixed host port asked for"
		return c
	}
	sort.Ints(ports)
	start, err := readInt(h.path("/proc/sys/net/ipv4/ip_unprivileged_port_start"))
	if err != nil {
		c.Level, c.Detail = LevelWarning, fmt.Sprintf("cannot read net.ipv4.ip_unprivileged_port_start: %v", err)
		return c
	}
	if ports[0] < start {
		c.Level = LevelError
		c.Detail = fmt.Sprintf("host port %d is below net.ipv4.ip_unprivileged_port_start=%d: users cannot bind it", ports[0], start)
		c.Fix = fmt.Sprintf("sysctl -w net.ipv4.ip_unprivileged_port_start=%d", ports[0])
		return c
	}
	c.Detail = fmt.Sprintf("lowest host port %d >= net.ipv4.ip_unprivileged_port_start=%d", ports[0], start)
	return c
}

// inotify warns below the limits kubelet and many pods need (kind
// documents the same figures for "too many open files").
func (h hostView) inotify(name string, want int) Check {
	key := "fs.inotify." + name
	c := Check{Name: key, Level: LevelOK}
	got, err := readInt(h.path("/proc/sys/fs/inotify/" + name))
	switch {
	case err != nil:
		c.Level, c.Detail = LevelSkip, fmt.Sprintf("cannot read it: %v", err)
	case got < want:
		c.Level, c.Detail = LevelWarning, fmt.Sprintf("%d is below %d: pods may fail with \"too many open files\"", got, want)
		c.Fix = fmt.Sprintf("sysctl -w %s=%d", key, want)
	default:
		c.Detail = fmt.Sprintf("%d >= %d", got, want)
	}
	return c
}

func readInt(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func statOwnerMode(p string) (int, fs.FileMode, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("stat %s: no owner", p)
	}
	return int(st.Uid), fi.Mode(), nil
}

// runtimeDirUID is N in a socket under /run/user/N/.
func runtimeDirUID(socket string) (int, bool) {
	_, rest, ok := strings.Cut(socket, "/run/user/")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, "/")
	uid, err := strconv.Atoi(n)
	return uid, err == nil
}

// userName looks uid up in the host's /etc/passwd; $USER, then the number,
// when it is not there (LDAP users, say).
func userName(root string, uid int) string {
	if b, err := os.ReadFile(filepath.Join(root, "/etc/passwd")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) > 2 && f[2] == strconv.Itoa(uid) {
				return f[0]
			}
		}
	}
	if u := os.Getenv("USER"); u != "" && uid == os.Getuid() {
		return u
	}
	return strconv.Itoa(uid)
}
