package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/cluster/kubeconfig"
	"github.com/kinc-dev/kinc/runtime"
)

func TestPrintPreflight(t *testing.T) {
	hostNote := runtime.Report{
		{Name: "cgroup v2", Level: runtime.LevelNote, Detail: "v1 (matters only for rootless)", Fix: "reboot"},
		{Name: "fs.inotify.max_user_watches", Level: runtime.LevelOK, Detail: "524288 >= 524288"},
	}
	userErr := runtime.Report{{Name: "cgroup v2", Level: runtime.LevelError, Detail: "v1", Fix: "reboot"}}
	rows := []infoRow{
		{Name: "podman", Info: &runtime.Info{Rootless: true}, Preflight: userErr},
		{Name: "docker", Info: &runtime.Info{}, Preflight: hostNote},
		{Name: "containerd", Info: &runtime.Info{}, Preflight: hostNote},
		{Name: "nerdctl"},
	}
	var b bytes.Buffer
	printPreflight(&b, rows)
	want := `
PREFLIGHT podman (rootless: create refuses while an error remains)
  error    cgroup v2: v1; fix: reboot

PREFLIGHT docker, containerd (rootful: notes are what rootless would need)
  note     cgroup v2: v1 (matters only for rootless); fix: reboot
  ok       fs.inotify.max_user_watches: 524288 >= 524288
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// rootlessTestUser is the unprivileged user the real rootless test runs
// kinc as; it is left in place (harmless) between runs.
const rootlessTestUser = "kinc-rootless-test"

// testUser is a host user with what rootless podman needs here.
type testUser struct {
	name, home, runDir string
	uid                int
}

// env is the user's environment for runuser.
func (u testUser) env(extra ...string) []string {
	return append([]string{"HOME=" + u.home, "XDG_RUNTIME_DIR=" + u.runDir, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "USER=" + u.name}, extra...)
}

// run runs a command as the user; it returns stdout, stderr and the exit code.
func (u testUser) run(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", u.name, "--", "env", "-i"}, append(env, args...)...)...)
	cmd.Dir = "/"
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %v as %s: %v", args, u.name, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// ensureRootlessUser creates the test user (idempotent) with subordinate
// ids, a runtime directory and podman storage on overlay, as
// shared/ENVIRONMENT.md says rootless podman needs on the CI VM.
func ensureRootlessUser(t *testing.T) testUser {
	t.Helper()
	for _, tool := range []string{"useradd", "usermod", "runuser", "podman"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the rootless test needs %s: %v", tool, err)
		}
	}
	if _, err := user.Lookup(rootlessTestUser); err != nil {
		if out, err := exec.Command("useradd", "-m", "-s", "/bin/bash", rootlessTestUser).CombinedOutput(); err != nil {
			t.Fatalf("useradd: %v: %s", err, out)
		}
	}
	pw, err := user.Lookup(rootlessTestUser)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pw.Uid)
	gid, _ := strconv.Atoi(pw.Gid)
	u := testUser{name: pw.Username, home: pw.HomeDir, uid: uid, runDir: fmt.Sprintf("/run/user/%d", uid)}
	for _, f := range []struct{ file, flag string }{{"/etc/subuid", "--add-subuids"}, {"/etc/subgid", "--add-subgids"}} {
		b, _ := os.ReadFile(f.file)
		if !strings.Contains("\n"+string(b), "\n"+u.name+":") {
			// High enough to stay clear of useradd's own allocations.
			if out, err := exec.Command("usermod", f.flag, "1000000-1065535", u.name).CombinedOutput(); err != nil {
				t.Fatalf("usermod %s: %v: %s", f.flag, err, out)
			}
		}
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{u.runDir, 0o700}, {filepath.Join(u.runDir, "podman"), 0o700}, {filepath.Join(u.home, ".config"), 0o755}, {filepath.Join(u.home, ".config/containers"), 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.path, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	storage := filepath.Join(u.home, ".config/containers/storage.conf")
	if err := os.WriteFile(storage, []byte("[storage]\ndriver = \"overlay\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(storage, uid, gid); err != nil {
		t.Fatal(err)
	}
	return u
}

// startUserPodman starts the user's podman API service and stops it when
// the test ends; it returns the socket's URL.
func startUserPodman(t *testing.T, u testUser) string {
	t.Helper()
	sock := filepath.Join(u.runDir, "podman", "podman.sock")
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Fatalf("a podman service already answers at %s: stop it first", sock)
	}
	os.Remove(sock)
	log, err := os.CreateTemp("", "kinc-rootless-podman-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("runuser", append([]string{"-u", u.name, "--", "env", "-i"},
		u.env("podman", "system", "service", "--time=0", "unix://"+sock)...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = "/", log, log
	// Its own process group, so that cleanup reaches podman behind runuser.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		log.Close()
		os.Remove(log.Name())
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return "unix://" + sock
		}
		select {
		case err := <-done:
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("the user's podman service exited: %v\n%s", err, out)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("the user's podman service did not answer at %s within 30s:\n%s", sock, out)
		}
	}
}

// buildKinc builds the kinc binary where the test user can run it.
func buildKinc(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kinc-rootless-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "kinc")
	cmd := exec.Command("go", "build", "-tags", "remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp", "-o", bin, "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building kinc: %v\n%s", err, out)
	}
	return bin
}

// TestRootlessPreflightRealHost runs kinc as an unprivileged user against
// that user's own podman: on a host that cannot run rootless nodes (this CI
// VM: cgroup v1 hybrid) create must refuse with each failed check and its
// fix, before making anything.
func TestRootlessPreflightRealHost(t *testing.T) {
	if testing.Short() {
		t.Skip("real rootless test: creates a user and starts a podman service")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to set up the rootless test user")
	}
	u := ensureRootlessUser(t)
	want, err := runtime.Preflight(runtime.Info{Name: "podman", Rootless: true}, runtime.WithUser(u.uid, u.name))
	if err != nil {
		t.Fatal(err)
	}
	failed := want.Filter(runtime.LevelError)
	if len(failed) == 0 {
		t.Skip("this host can run rootless nodes: nothing for the preflight to refuse")
	}
	// On a cgroup v1 host (the CI VM) the cgroup v2 check must be among them.
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil && failed[0].Name != "cgroup v2" {
		t.Fatalf("cgroup v1 host, yet the preflight does not fail on cgroup v2: %v", want)
	}
	host := startUserPodman(t, u)
	bin := buildKinc(t)
	env := u.env("CONTAINER_HOST=" + host)
	const name = "rootless-preflight"

	t.Run("info", func(t *testing.T) {
		out, errOut, code := u.run(t, env, bin, "info")
		if code != 0 {
			t.Fatalf("kinc info as %s: exit %d\n%s%s", u.name, code, out, errOut)
		}
		t.Logf("kinc info as %s:\n%s", u.name, out)
		if !strings.Contains(out, "PREFLIGHT podman (rootless") {
			t.Errorf("no rootless preflight section for podman:\n%s", out)
		}
		for _, c := range failed {
			if !strings.Contains(out, c.String()) {
				t.Errorf("kinc info lacks the failed check %q", c)
			}
		}
		out, errOut, code = u.run(t, env, bin, "info", "-o", "json")
		if code != 0 {
			t.Fatalf("kinc info -o json: exit %d\n%s", code, errOut)
		}
		var rows []infoRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("parsing kinc info -o json: %v\n%s", err, out)
		}
		var podman *infoRow
		for i := range rows {
			if rows[i].Name == "podman" {
				podman = &rows[i]
			}
		}
		if podman == nil || podman.Info == nil || !podman.Info.Rootless || !podman.Selected {
			t.Fatalf("podman as %s is not reachable, selected and rootless: %+v", u.name, podman)
		}
		if got := podman.Preflight.Filter(runtime.LevelError); len(got) != len(failed) {
			t.Errorf("json has %d failed checks, want %d: %v", len(got), len(failed), got)
		}
	})

	t.Run("create refuses before making anything", func(t *testing.T) {
		out, errOut, code := u.run(t, env, bin, "create", "cluster", "--name", name)
		t.Logf("kinc create cluster as %s: exit %d\n%s%s", u.name, code, out, errOut)
		if code == 0 {
			t.Fatal("create succeeded on a host that cannot run rootless nodes")
		}
		if !strings.Contains(errOut, "rootless preflight failed") {
			t.Errorf("not refused by the preflight:\n%s", errOut)
		}
		for _, c := range failed {
			if !strings.Contains(errOut, "  - "+c.String()+"\n") {
				t.Errorf("error lacks the line for %q", c)
			}
		}
		if strings.Contains(errOut, "everything created was removed") {
			t.Errorf("create made something before refusing:\n%s", errOut)
		}
		for _, list := range [][]string{
			{"ps", "-a", "--format", "{{.Names}}"},
			{"network", "ls", "--format", "{{.Name}}"},
			{"volume", "ls", "--format", "{{.Name}}"},
		} {
			got, errOut, code := u.run(t, env, append([]string{"podman", "--remote", "--url", host}, list...)...)
			if code != 0 {
				t.Fatalf("podman %v as %s: exit %d: %s", list, u.name, code, errOut)
			}
			if strings.Contains(got, name) {
				t.Errorf("podman %s lists a thing of cluster %s:\n%s", list[0], name, got)
			}
		}
		if b, err := os.ReadFile(filepath.Join(u.home, ".kube", "config")); err == nil && strings.Contains(string(b), kubeconfig.ContextName(name)) {
			t.Errorf("the user's kubeconfig has an entry for %s", name)
		}
	})
}
