package cli

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nodeMemory is the memory working set of a container, read on the host
// from its cgroup under cgroupRoot (/sys/fs/cgroup): usage minus the
// inactive file cache, which the kernel reclaims first. kubelet counts
// memory the same way.
//
// The runtime reports no host PID, so the cgroup is found by the
// container's ID, which every runtime puts in the cgroup's name. A node
// has its own cgroup namespace, so its /proc/1/cgroup says only "/".
func nodeMemory(cgroupRoot string, version int, id string) (uint64, error) {
	dir, err := findCgroup(cgroupRoot, version, id)
	if err != nil {
		return 0, err
	}
	return workingSet(dir, version)
}

// findCgroup returns the shallowest cgroup directory named after the
// container: ID, libpod-ID (podman), docker-ID (docker's systemd driver),
// with or without .scope; containerd's kinc backend uses the ID (its
// name) alone. On cgroup v1 only the memory hierarchy is searched.
func findCgroup(root string, version int, id string) (string, error) {
	if version == 1 {
		root = filepath.Join(root, "memory")
	}
	found := ""
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // an unreadable corner of the tree is not ours
		}
		if found != "" && depth(path) >= depth(found) {
			return fs.SkipDir
		}
		if cgroupNamed(d.Name(), id) {
			found = path
			return fs.SkipDir // what is below belongs to the container
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if found == "" {
		return "", fmt.Errorf("no cgroup for container %s under %s", id, root)
	}
	return found, nil
}

func depth(path string) int { return strings.Count(path, string(filepath.Separator)) }

// cgroupNamed tells whether a cgroup directory name is container id's.
// libpod-conmon-ID (podman's monitor) is not.
func cgroupNamed(name, id string) bool {
	name = strings.TrimSuffix(name, ".scope")
	for _, prefix := range []string{"", "libpod-", "docker-"} {
		if name == prefix+id {
			return true
		}
	}
	return false
}

// workingSet reads a cgroup directory: on v1 memory.usage_in_bytes minus
// total_inactive_file (the hierarchy's total, as usage is), on v2
// memory.current minus inactive_file.
func workingSet(dir string, version int) (uint64, error) {
	usageFile, inactiveKey := "memory.current", "inactive_file"
	if version == 1 {
		usageFile, inactiveKey = "memory.usage_in_bytes", "total_inactive_file"
	}
	b, err := os.ReadFile(filepath.Join(dir, usageFile))
	if err != nil {
		return 0, err
	}
	usage, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", filepath.Join(dir, usageFile), err)
	}
	inactive, err := memoryStat(filepath.Join(dir, "memory.stat"), inactiveKey)
	if err != nil {
		return 0, err
	}
	if inactive > usage {
		return 0, nil // the two files are not read at the same instant
	}
	return usage - inactive, nil
}

// memoryStat returns one counter of a memory.stat file.
func memoryStat(path, key string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing %s in %s: %w", key, path, err)
			}
			return n, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in %s", key, path)
}

func TestNodeMemory(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	// Cgroups with usage, inactive cache and a decoy line whose key ends
	// like the one wanted. Decoy directories sit higher than the real one,
	// so that only their names keep them out.
	v1 := map[string]string{
		"memory.usage_in_bytes": "524288000\n",
		"memory.stat":           "cache 1000\ninactive_file 7\ntotal_active_file 5\ntotal_inactive_file 104857600\n",
	}
	v2 := map[string]string{
		"memory.current": "314572800\n",
		"memory.stat":    "anon 1000\nactive_file 5\ninactive_file 104857600\n",
	}
	tests := []struct {
		name    string
		version int
		dirs    map[string]map[string]string // cgroup path to its files
		want    uint64
		wantErr string
	}{
		{
			name: "v1 podman cgroupfs", version: 1,
			dirs: map[string]map[string]string{
				"memory/libpod_parent/conmon":                     nil,
				"memory/libpod_parent/libpod-" + id:               v1,
				"memory/libpod_parent/libpod-" + id + "/kubepods": {"memory.usage_in_bytes": "1\n"},
				"cpu/libpod_parent/libpod-" + id:                  nil,
				"memory/libpod-conmon-" + id:                      {"memory.usage_in_bytes": "2\n"},
			},
			want: 400 << 20,
		},
		{
			name: "v1 docker", version: 1,
			dirs: map[string]map[string]string{"memory/docker/" + id: v1},
			want: 400 << 20,
		},
		{
			name: "v2 podman systemd", version: 2,
			dirs: map[string]map[string]string{
				"machine.slice/libpod-conmon-" + id + ".scope":           {"memory.current": "2\n"},
				"machine.slice/libpod-" + id + ".scope":                  v2,
				"machine.slice/libpod-" + id + ".scope/kubelet.slice":    {"memory.current": "1\n"},
				"user.slice/user-1000.slice/user@1000.service/app.slice": nil,
			},
			want: 200 << 20,
		},
		{
			name: "v2 containerd by name", version: 2,
			dirs: map[string]map[string]string{
				id + "2":     {"memory.current": "2\n"},
				"kinc/" + id: v2,
			},
			want: 200 << 20,
		},
		{
			name: "usage below inactive", version: 2,
			dirs: map[string]map[string]string{"docker-" + id + ".scope": {"memory.current": "10\n", "memory.stat": "inactive_file 20\n"}},
			want: 0,
		},
		{
			name: "no cgroup", version: 2,
			dirs:    map[string]map[string]string{"machine.slice/libpod-conmon-" + id + ".scope": nil},
			wantErr: "no cgroup for container",
		},
		{
			name: "no inactive_file", version: 1,
			dirs:    map[string]map[string]string{"memory/docker/" + id: {"memory.usage_in_bytes": "10\n", "memory.stat": "inactive_file 3\n"}},
			wantErr: "no total_inactive_file",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for dir, files := range tc.dirs {
				if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
					t.Fatal(err)
				}
				for name, content := range files {
					if err := os.WriteFile(filepath.Join(root, dir, name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := nodeMemory(root, tc.version, id)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("nodeMemory = %d, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("nodeMemory = %d, want %d", got, tc.want)
			}
		})
	}
}
