package runtime

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updatePreflight = flag.Bool("update-preflight", false, "rewrite testdata/preflight-*.golden")

// perm is a fixture file's owner and mode, which git does not keep.
type perm struct {
	uid  int
	mode fs.FileMode
}

// fixtureStat stats files under root, reporting owner and mode from perms
// (by path relative to root), else uid 1000 and mode 0666.
func fixtureStat(root string, perms map[string]perm) func(string) (int, fs.FileMode, error) {
	return func(p string) (int, fs.FileMode, error) {
		if _, err := os.Stat(p); err != nil {
			return 0, 0, err
		}
		rel, _ := filepath.Rel(root, p)
		if pm, ok := perms[rel]; ok {
			return pm.uid, pm.mode, nil
		}
		return 1000, 0o666, nil
	}
}

func preflightFixture(t *testing.T, fixture string, info Info, perms map[string]perm, opts ...PreflightOption) Report {
	t.Helper()
	root := filepath.Join("testdata", "preflight-"+fixture)
	opts = append([]PreflightOption{WithHostRoot(root), func(o *preflightOptions) error {
		o.stat = fixtureStat(root, perms)
		return nil
	}}, opts...)
	r, err := Preflight(info, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// thisHostDevs are /dev/fuse and /dev/net/tun as on the CI VM: root's only.
var thisHostDevs = map[string]perm{"dev/fuse": {0, 0o600}, "dev/net/tun": {0, 0o600}}

func TestPreflight(t *testing.T) {
	rootless := Info{Name: "podman", Rootless: true, Socket: "unix:///run/user/1000/podman/podman.sock"}
	rootful := Info{Name: "podman", Socket: "unix:///run/podman/podman.sock"}
	alice := WithUser(1000, "")
	for _, tc := range []struct {
		name    string
		fixture string
		info    Info
		perms   map[string]perm
		opts    []PreflightOption
		want    map[string]Level
		// wantErr are substrings of Report.Err(); none means no error.
		wantErr []string
	}{{
		name: "v1 hybrid rootless, as this host", fixture: "v1-hybrid", info: rootless, perms: thisHostDevs,
		opts: []PreflightOption{alice, WithHostPorts(0, 6443)},
		want: map[string]Level{"cgroup v2": LevelError, "cgroup delegation": LevelSkip, "subuid": LevelError, "subgid": LevelError,
			"/dev/fuse": LevelWarning, "/dev/net/tun": LevelError, "host ports": LevelOK,
			"fs.inotify.max_user_watches": LevelWarning, "fs.inotify.max_user_instances": LevelWarning},
		wantErr: []string{"cgroup v1 (hybrid", "systemd.unified_cgroup_hierarchy=1", "usermod --add-subuids 100000-165535 alice", "chmod 0666 /dev/net/tun"},
	}, {
		name: "v1 hybrid rootful: rootless needs are notes", fixture: "v1-hybrid", info: rootful, perms: thisHostDevs,
		opts: []PreflightOption{alice, WithHostPorts(80)},
		want: map[string]Level{"cgroup v2": LevelNote, "subuid": LevelNote, "/dev/fuse": LevelNote, "/dev/net/tun": LevelNote,
			"host ports": LevelSkip, "fs.inotify.max_user_watches": LevelWarning},
	}, {
		name: "v1 hybrid as root, rootful", fixture: "v1-hybrid", info: rootful, perms: thisHostDevs,
		opts: []PreflightOption{WithUser(0, "root")},
		want: map[string]Level{"cgroup v2": LevelNote, "subuid": LevelSkip, "subgid": LevelSkip, "/dev/fuse": LevelOK, "/dev/net/tun": LevelOK,
			"user namespaces": LevelSkip, "newuidmap": LevelSkip},
	}, {
		name: "v1 legacy booted with unified_cgroup_hierarchy=0", fixture: "v1-legacy", info: rootless,
		opts: []PreflightOption{alice},
		want: map[string]Level{"cgroup v2": LevelError, "subuid": LevelOK, "subgid": LevelOK, "fs.inotify.max_user_watches": LevelOK,
			"user namespaces": LevelError, "newuidmap": LevelError},
		wantErr: []string{"/sys/fs/cgroup is cgroup v1; rootless", "remove systemd.unified_cgroup_hierarchy=0",
			"kernel.unprivileged_userns_clone is 0; fix: sysctl -w kernel.unprivileged_userns_clone=1", "newgidmap not found", "apt-get install uidmap"},
	}, {
		name: "v2 without delegation", fixture: "v2-no-delegation", info: rootless,
		opts:    []PreflightOption{alice, WithStorageDriver("overlay")},
		want:    map[string]Level{"cgroup v2": LevelOK, "cgroup delegation": LevelError, "subuid": LevelOK, "/dev/fuse": LevelOK, "user namespaces": LevelError, "newuidmap": LevelOK},
		wantErr: []string{"user.max_user_namespaces is 0; fix: sysctl -w user.max_user_namespaces=28633", `controllers cpu are not delegated to alice (/user.slice/user-1000.slice/user@1000.service/cgroup.controllers: "memory pids")`, "Delegate=cpu cpuset io memory pids", "systemd-run --user --scope -p Delegate=yes"},
	}, {
		name: "the user is the owner of the rootless socket", fixture: "v2-no-delegation",
		info:    Info{Name: "podman", Rootless: true, Socket: "unix:///run/user/1001/podman/podman.sock"},
		want:    map[string]Level{"subuid": LevelError, "subgid": LevelOK},
		wantErr: []string{"/etc/subuid gives bob only 1000 ids"},
	}, {
		name: "v2 small subuid range", fixture: "v2-no-delegation", info: rootless,
		opts:    []PreflightOption{WithUser(1001, "")},
		want:    map[string]Level{"subuid": LevelError, "subgid": LevelOK},
		wantErr: []string{"/etc/subuid gives bob only 1000 ids, nodes need 65536", "usermod --add-subuids 166536-232071 bob"},
	}, {
		name: "v2 delegated, low port allowed by sysctl", fixture: "v2-delegated", info: rootless,
		opts: []PreflightOption{alice, WithHostPorts(80, 443, 6443), WithStorageDriver("fuse-overlayfs")},
		want: map[string]Level{"cgroup v2": LevelOK, "cgroup delegation": LevelOK, "subuid": LevelOK, "subgid": LevelOK,
			"user namespaces": LevelWarning, "newuidmap": LevelOK, "/dev/fuse": LevelOK, "/dev/net/tun": LevelOK, "host ports": LevelOK,
			"fs.inotify.max_user_watches": LevelOK, "fs.inotify.max_user_instances": LevelOK},
	}, {
		name: "v2 delegated, port below the sysctl", fixture: "v2-delegated", info: rootless,
		opts:    []PreflightOption{alice, WithHostPorts(443, 53)},
		want:    map[string]Level{"host ports": LevelError, "cgroup delegation": LevelOK},
		wantErr: []string{"host port 53 is below net.ipv4.ip_unprivileged_port_start=80", "sysctl -w net.ipv4.ip_unprivileged_port_start=53"},
	}, {
		name: "v2 own scope without /dev/fuse, fuse-overlayfs", fixture: "v2-own-scope", info: rootless,
		opts:    []PreflightOption{alice, WithStorageDriver("fuse-overlayfs")},
		want:    map[string]Level{"cgroup delegation": LevelOK, "subuid": LevelOK, "/dev/fuse": LevelError},
		wantErr: []string{"/dev/fuse is missing: fuse-overlayfs cannot work", "modprobe fuse"},
	}, {
		name: "v2 own scope owned by root is not delegated", fixture: "v2-own-scope", info: rootless,
		perms:   map[string]perm{"sys/fs/cgroup/kinc.scope": {0, 0o755}},
		opts:    []PreflightOption{alice, WithStorageDriver("vfs")},
		want:    map[string]Level{"cgroup delegation": LevelError, "/dev/fuse": LevelOK},
		wantErr: []string{"the user's cgroup /kinc.scope belongs to uid 0, not to alice (uid 1000)"},
	}, {
		name: "v2 own scope, fuse unknown and missing: a warning", fixture: "v2-own-scope", info: rootless,
		opts: []PreflightOption{alice},
		want: map[string]Level{"/dev/fuse": LevelWarning, "cgroup delegation": LevelOK},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := preflightFixture(t, tc.fixture, tc.info, tc.perms, tc.opts...)
			got := map[string]Check{}
			for _, c := range r {
				got[c.Name] = c
			}
			for name, level := range tc.want {
				if got[name].Level != level {
					t.Errorf("%s: level %q, want %q (%s)", name, got[name].Level, level, got[name])
				}
			}
			err := r.Err()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrPreflight) {
				t.Fatalf("error %v does not wrap ErrPreflight", err)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			// One line per failed check, each with its fix.
			lines := strings.Split(err.Error(), "\n")[1:]
			if len(lines) != len(r.Filter(LevelError)) {
				t.Errorf("%d lines for %d errors:\n%v", len(lines), len(r.Filter(LevelError)), err)
			}
			for _, l := range lines {
				if !strings.Contains(l, "; fix: ") {
					t.Errorf("line without a fix: %q", l)
				}
			}
		})
	}
}

// TestPreflightGolden pins the whole message a user of this CI host gets.
func TestPreflightGolden(t *testing.T) {
	r := preflightFixture(t, "v1-hybrid", Info{Name: "podman", Rootless: true}, thisHostDevs, WithUser(1000, ""), WithHostPorts(6443))
	var b strings.Builder
	for _, c := range r {
		b.WriteString(string(c.Level) + "\t" + c.String() + "\n")
	}
	b.WriteString("\n" + r.Err().Error() + "\n")
	golden := filepath.Join("testdata", "preflight-v1-hybrid.golden")
	if *updatePreflight {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-preflight to create it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("report differs from %s:\n%s", golden, b.String())
	}
}

func TestPreflightRemoteSkipped(t *testing.T) {
	r, err := Preflight(Info{Name: "podman", Rootless: true, Socket: "ssh://core@host:22/run/podman/podman.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 1 || r[0].Level != LevelSkip || r.Err() != nil {
		t.Errorf("remote runtime checked: %v", r)
	}
}

// TestPreflightThisHost runs against the real / : whatever the host, every
// check answers and an error always carries a fix.
func TestPreflightThisHost(t *testing.T) {
	r, err := Preflight(Info{Name: "podman", Rootless: true}, WithUser(65534, "nobody"), WithHostPorts(6443))
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 11 {
		t.Fatalf("%d checks, want 11: %v", len(r), r)
	}
	for _, c := range r {
		if c.Level == LevelError && c.Fix == "" {
			t.Errorf("error without a fix: %s", c)
		}
		t.Logf("%-7s %s", c.Level, c)
	}
	if _, err := Preflight(Info{}, WithUser(-1, "")); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative uid: %v", err)
	}
}
