package nodeimage

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kinc-dev/kinc/runtime"
	"github.com/kinc-dev/kinc/runtime/podman"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestBuildBaseReal builds the default base image for real (debootstrap
// through the host's mirror) into the shared cache, so later runs and other
// packages' tests reuse it, and checks what a node needs is in it.
func TestBuildBaseReal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Debian with debootstrap")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("needs debootstrap")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	archive, err := CachedBaseArchive(ctx, WithProgress(testProgress{t}))
	if err != nil {
		t.Fatalf("CachedBaseArchive: %v", err)
	}
	t.Logf("base image archive %s ready in %s", archive, time.Since(start).Round(time.Second))

	// A second build reuses the cached root filesystem.
	start = time.Now()
	again, err := BuildBase(ctx)
	if err != nil {
		t.Fatalf("BuildBase again: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("cached BuildBase took %s, want seconds", took)
	}

	img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatalf("reading %s: %v", archive, err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	// A docker-archive keeps config and layers, not the manifest.
	sameImage(t, again, img)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Config.Entrypoint, " "); got != EntrypointPath {
		t.Errorf("entrypoint %q, want %q", got, EntrypointPath)
	}
	if got := strings.Join(cfg.Config.Cmd, " "); got != "/sbin/init" {
		t.Errorf("cmd %q, want /sbin/init", got)
	}
	if cfg.Config.StopSignal != "SIGRTMIN+3" {
		t.Errorf("stop signal %q", cfg.Config.StopSignal)
	}

	files := imageFiles(t, img)
	for _, p := range []string{
		"sbin", "usr/sbin/init", "usr/lib/systemd/systemd", "usr/bin/containerd", "usr/sbin/runc",
		"usr/sbin/iptables", "usr/sbin/nft", "usr/sbin/conntrack", "usr/bin/socat",
		"usr/sbin/ethtool", "usr/sbin/haproxy", "usr/bin/mount", "usr/sbin/ip",
		"opt/cni/bin/bridge", "opt/cni/bin/portmap", "opt/cni/bin/host-local", "opt/cni/bin/loopback",
		"usr/local/bin/entrypoint", "etc/containerd/config.toml",
		"etc/systemd/system/kubelet.service", "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
		"etc/systemd/system/multi-user.target.wants/kubelet.service",
		"etc/systemd/system/multi-user.target.wants/containerd.service",
		"etc/ssl/certs/ca-certificates.crt",
	} {
		if _, ok := files[p]; !ok {
			t.Errorf("image lacks /%s", p)
		}
	}
	for _, p := range []string{"var/lib/apt/lists/lock", "usr/share/man/man1", "etc/systemd/system/multi-user.target.wants/haproxy.service"} {
		if _, ok := files[p]; ok {
			t.Errorf("image has /%s, want it cleaned up", p)
		}
	}
	if h := files["sbin"]; h == nil || h.Linkname != "usr/sbin" {
		t.Errorf("/sbin should link to usr/sbin (merged /usr): %+v", h)
	}
	if h := files["etc/machine-id"]; h == nil || h.Size != 0 {
		t.Errorf("/etc/machine-id should be empty: %+v", h)
	}
	if h := files["usr/local/bin/entrypoint"]; h != nil && h.Mode&0o111 == 0 {
		t.Errorf("entrypoint not executable: mode %o", h.Mode)
	}
	if h := files["etc/systemd/system/systemd-udevd.service"]; h == nil || h.Linkname != "/dev/null" {
		t.Errorf("systemd-udevd.service not masked: %+v", h)
	}
	size, _ := img.Size()
	var compressed, uncompressed int64
	layers, _ := img.Layers()
	for _, l := range layers {
		s, _ := l.Size()
		compressed += s
	}
	for _, h := range files {
		uncompressed += h.Size
	}
	fi, _ := os.Stat(archive)
	t.Logf("base image: %d layers, %.1f MB compressed, %.1f MB of files, archive %.1f MB, manifest %d bytes",
		len(layers), float64(compressed)/1e6, float64(uncompressed)/1e6, float64(fi.Size())/1e6, size)
}

// imageFiles lists the flattened file system of img by path.
func imageFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading image files: %v", err)
		}
		files[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = h
	}
}

type testProgress struct{ t *testing.T }

func (p testProgress) Start(step string) { p.t.Logf("… %s", step) }
func (p testProgress) End(step string, err error) {
	if err != nil {
		p.t.Logf("✗ %s: %v", step, err)
		return
	}
	p.t.Logf("✓ %s", step)
}

// recordProgress remembers the steps reported.
type recordProgress struct{ steps []string }

func (p *recordProgress) Start(step string) { p.steps = append(p.steps, "start "+step) }
func (p *recordProgress) End(step string, err error) {
	s := "end " + step
	if err != nil {
		s += " (failed)"
	}
	p.steps = append(p.steps, s)
}

func TestBuildBaseErrors(t *testing.T) {
	out := func(dir string) Output {
		return Output{Format: DockerArchive, Path: filepath.Join(dir, "out", "base.tar")}
	}
	tests := []struct {
		name    string
		opts    func(dir string) []BaseOption
		setup   func(t *testing.T)
		needs   string // "root" when the case runs debootstrap
		wantIs  error
		wantMsg string
	}{
		{
			name: "not root",
			opts: func(string) []BaseOption {
				return []BaseOption{func(o *baseOptions) error { o.geteuid = func() int { return 1000 }; return nil }}
			},
			wantIs: ErrNotRoot,
		},
		{
			name: "no debootstrap",
			opts: func(string) []BaseOption {
				return []BaseOption{func(o *baseOptions) error { o.geteuid = func() int { return 0 }; return nil }}
			},
			setup:  func(t *testing.T) { t.Setenv("PATH", t.TempDir()) },
			wantIs: ErrNoDebootstrap,
		},
		{
			name:    "mirror not a URL",
			opts:    func(string) []BaseOption { return []BaseOption{WithMirror("deb.debian.org/debian")} },
			wantMsg: `invalid Debian mirror "deb.debian.org/debian"`,
		},
		{
			name:    "bad suite",
			opts:    func(string) []BaseOption { return []BaseOption{WithSuite("book worm")} },
			wantMsg: `invalid Debian suite "book worm"`,
		},
		{
			name:    "bad image name",
			opts:    func(string) []BaseOption { return []BaseOption{WithImageName("Kinc/Base:!")} },
			wantMsg: `parsing image name "Kinc/Base:!"`,
		},
		{
			// Nothing listens on port 9: debootstrap fails at once.
			name:    "unreachable mirror",
			opts:    func(string) []BaseOption { return []BaseOption{WithMirror("http://127.0.0.1:9/debian")} },
			needs:   "root",
			wantMsg: "bootstrapping Debian bookworm from http://127.0.0.1:9/debian: exit status",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needs == "root" {
				if os.Geteuid() != 0 {
					t.Skip("needs root")
				}
				if _, err := exec.LookPath("debootstrap"); err != nil {
					t.Skip("needs debootstrap")
				}
			}
			if tt.setup != nil {
				tt.setup(t)
			}
			dir := t.TempDir()
			progress := &recordProgress{}
			opts := append([]BaseOption{WithCacheDir(dir), WithOutput(out(dir)), WithProgress(progress)}, tt.opts(dir)...)
			_, err := BuildBase(context.Background(), opts...)
			if err == nil {
				t.Fatal("BuildBase succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v, want %v", err, tt.wantIs)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantMsg)
			}
			if _, serr := os.Stat(out(dir).Path); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("output written despite the error: %v", serr)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "base", "rootfs-*"))
			if len(left) > 0 {
				t.Errorf("build left %v behind", left)
			}
			if tt.needs == "root" && (len(progress.steps) != 2 || !strings.HasSuffix(progress.steps[1], "(failed)")) {
				t.Errorf("progress %q, want one failed step", progress.steps)
			}
		})
	}
}

func TestMirrorFromSources(t *testing.T) {
	tests := []struct {
		file, suite, want string
	}{
		{"base-deb822.sources", "bookworm", "http://deb.debian.org/debian"},
		{"base-deb822.sources", "bookworm-security", "http://deb.debian.org/debian-security"},
		{"base-deb822.sources", "trixie", ""},
		{"base-oneline.list", "bookworm", "http://mirror.example.org/debian"},
		{"base-oneline.list", "bullseye", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.suite, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := mirrorFromSources(string(data), tt.suite); got != tt.want {
				t.Errorf("mirror %q, want %q", got, tt.want)
			}
		})
	}
}

func TestContainerdConfig(t *testing.T) {
	tests := []struct {
		name   string
		config ContainerdConfig
		golden string
	}{
		{"default", DefaultContainerdConfig(), "base-containerd-default.toml"},
		{"systemd cgroups, restricted", ContainerdConfig{SandboxImage: "registry.k8s.io/pause:3.10.2", SystemdCgroup: true, RestrictOOMScoreAdj: true}, "base-containerd-systemd.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.config.Render()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("config differs from %s (run with -update to accept):\n%s", golden, got)
			}
			// It must be valid TOML saying what was asked.
			var parsed struct {
				Version int
				Plugins map[string]struct {
					SandboxImage        string `toml:"sandbox_image"`
					RestrictOOMScoreAdj bool   `toml:"restrict_oom_score_adj"`
					Containerd          struct {
						Snapshotter string
						Runtimes    map[string]struct {
							Options struct{ SystemdCgroup bool }
						}
					}
					CNI struct {
						BinDir string `toml:"bin_dir"`
					} `toml:"cni"`
				}
			}
			if _, err := toml.Decode(string(got), &parsed); err != nil {
				t.Fatalf("config is not TOML: %v", err)
			}
			cri := parsed.Plugins["io.containerd.grpc.v1.cri"]
			if parsed.Version != 2 || cri.SandboxImage != tt.config.SandboxImage || cri.RestrictOOMScoreAdj != tt.config.RestrictOOMScoreAdj ||
				cri.Containerd.Runtimes["runc"].Options.SystemdCgroup != tt.config.SystemdCgroup ||
				cri.Containerd.Snapshotter != "overlayfs" || cri.CNI.BinDir != CNIBinDir {
				t.Errorf("parsed config %+v does not match %+v", parsed, tt.config)
			}
		})
	}
	if _, err := (ContainerdConfig{SandboxImage: `x" evil = "y`}).Render(); err == nil {
		t.Error("a quote in the sandbox image was accepted")
	}
}

func TestNodeFiles(t *testing.T) {
	entries, err := NodeFiles(DefaultContainerdConfig())
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Entry{}
	for _, e := range entries {
		byPath[e.Path] = e
	}
	entrypoint, ok := byPath[EntrypointPath]
	if !ok || entrypoint.Mode.Perm() != 0o755 {
		t.Fatalf("entrypoint missing or not 0755: %+v", entrypoint.Mode)
	}
	if _, err := exec.LookPath("bash"); err == nil {
		cmd := exec.Command("bash", "-n")
		cmd.Stdin = bytes.NewReader(entrypoint.Data)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("entrypoint has a syntax error: %v\n%s", err, out)
		}
	}
	for p, want := range map[string][]string{
		"/etc/systemd/system/kubelet.service":                   {"ExecStart=" + KubeletPath, "TasksMax=infinity", "ConditionPathExists=" + KubeletPath},
		"/etc/systemd/system/kubelet.service.d/10-kubeadm.conf": {"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf", "--kubeconfig=/etc/kubernetes/kubelet.conf", "--config=/var/lib/kubelet/config.yaml", "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env", "EnvironmentFile=-/etc/default/kubelet"},
		ContainerdConfigPath:                                    {`sandbox_image = "` + DefaultPauseImage + `"`, "restrict_oom_score_adj = false"},
	} {
		e, ok := byPath[p]
		if !ok {
			t.Errorf("no %s", p)
			continue
		}
		for _, w := range want {
			if !bytes.Contains(e.Data, []byte(w)) {
				t.Errorf("%s lacks %q", p, w)
			}
		}
	}
	if l := byPath["/etc/systemd/system/multi-user.target.wants/kubelet.service"]; l.Linkname != "/etc/systemd/system/kubelet.service" {
		t.Errorf("kubelet not enabled: %+v", l)
	}
}

// TestEntrypointOOMScoreAdj runs the entrypoint's oom_score_adj step on a
// copy of the config: where CAP_SYS_RESOURCE is missing (this CI host) it
// must turn restrict_oom_score_adj on, elsewhere leave it.
func TestEntrypointOOMScoreAdj(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	conf, err := DefaultContainerdConfig().Render()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	confPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	fn := entrypointFunctions(t, map[string]string{"local conf=/etc/containerd/config.toml": "local conf=" + confPath})
	cmd := exec.Command("bash", "-c", fn+"\nfix_oom_score_adj")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fix_oom_score_adj: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(confPath)
	status, _ := os.ReadFile("/proc/self/status")
	canLower := capSysResource(string(status))
	wantRestricted := !canLower
	if restricted := bytes.Contains(got, []byte("restrict_oom_score_adj = true")); restricted != wantRestricted {
		t.Errorf("restrict_oom_score_adj = %v on a host where CAP_SYS_RESOURCE is %v", restricted, canLower)
	}
}

// capSysResource tells from /proc/self/status whether CAP_SYS_RESOURCE (24)
// is in the bounding set.
func capSysResource(status string) bool {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			var bnd uint64
			for _, c := range strings.TrimSpace(v) {
				bnd = bnd<<4 | uint64(strings.IndexRune("0123456789abcdef", c))
			}
			return bnd>>24&1 == 1
		}
	}
	return false
}

func TestPrepareRootfs(t *testing.T) {
	root := t.TempDir()
	write := func(p, content string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lib/systemd/systemd", "")
	if err := os.MkdirAll(filepath.Join(root, "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/lib/systemd/systemd", filepath.Join(root, "sbin/init")); err != nil {
		t.Fatal(err)
	}
	write("etc/machine-id", "5cc9933b582149d79a8591b985c9a341\n")
	write("var/lib/dbus/machine-id", "5cc9933b582149d79a8591b985c9a341\n")
	write("etc/resolv.conf", "nameserver 10.0.0.1\n")
	write("var/cache/apt/archives/x.deb", "deb")
	write("var/lib/apt/lists/deb.debian.org_Packages", "list")
	write("usr/share/doc/bash/copyright", "c")
	write("usr/share/locale/fr/LC_MESSAGES/x.mo", "mo")
	write("usr/lib/cni/bridge", "plugin")
	write("usr/lib/cni/portmap", "plugin")
	write("etc/systemd/system/multi-user.target.wants/haproxy.service", "")
	write("etc/systemd/system/timers.target.wants/apt-daily.timer", "")
	write("dev/null", "not a device here")

	if err := prepareRootfs(root); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"etc/machine-id": "", "etc/resolv.conf": ""} {
		if got, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(got) != want {
			t.Errorf("/%s = %q, %v; want %q", p, got, err, want)
		}
	}
	for _, p := range []string{
		"var/lib/dbus/machine-id", "var/cache/apt/archives", "var/lib/apt/lists/deb.debian.org_Packages",
		"usr/share/doc/bash", "usr/share/locale/fr", "dev/null",
		"etc/systemd/system/multi-user.target.wants/haproxy.service",
		"etc/systemd/system/timers.target.wants/apt-daily.timer",
	} {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("/%s still there", p)
		}
	}
	for link, target := range map[string]string{
		"etc/systemd/system/systemd-udevd.service":                      "/dev/null",
		"etc/systemd/system/getty.target":                               "/dev/null",
		"etc/systemd/system/default.target":                             "/lib/systemd/system/multi-user.target",
		"etc/systemd/system/multi-user.target.wants/containerd.service": "/lib/systemd/system/containerd.service",
		"opt/cni/bin/bridge":                                            "/usr/lib/cni/bridge",
		"opt/cni/bin/portmap":                                           "/usr/lib/cni/portmap",
	} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != target {
			t.Errorf("/%s -> %q (%v), want -> %q", link, got, err, target)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "dev")); err != nil || !fi.IsDir() {
		t.Errorf("/dev should stay, empty: %v", err)
	}

	if err := prepareRootfs(t.TempDir()); err == nil || !strings.Contains(err.Error(), "/sbin/init") {
		t.Errorf("a tree without /sbin/init was accepted: %v", err)
	}
}

// TestBaseBootsPodman loads the base image into the real podman (through its
// API, as kinc does) and boots a node from it: systemd must reach "running"
// with nothing failed, containerd must serve, and the entrypoint must have
// adapted containerd's config to this host.
func TestBaseBootsPodman(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a node container")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/run/podman/podman.sock"); err != nil {
		t.Skip("needs the podman API socket (.ci/setup-runtimes starts it)")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("needs debootstrap")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rt, err := podman.New(ctx, podman.WithURI("unix:///run/podman/podman.sock"))
	if err != nil {
		t.Skipf("podman not reachable: %v", err)
	}
	defer rt.Close()
	img, err := BuildBase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	names, err := Load(ctx, rt, img, DefaultBaseImage)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Logf("loaded %v in %s", names, time.Since(start).Round(time.Millisecond))
	if len(names) == 0 || !strings.HasSuffix(names[0], DefaultBaseImage) {
		t.Fatalf("loaded names %v, want %s", names, DefaultBaseImage)
	}

	node := fmt.Sprintf("kinc-basetest-%d", os.Getpid())
	start = time.Now()
	if _, err := rt.CreateNode(ctx, runtime.NodeSpec{Name: node, Image: names[0]}); err != nil {
		t.Fatalf("CreateNode: %v", err)
	}
	defer func() {
		if err := rt.DeleteNode(context.WithoutCancel(ctx), node); err != nil {
			t.Errorf("DeleteNode: %v", err)
		}
	}()
	run := func(cmd ...string) (string, error) {
		var out bytes.Buffer
		err := rt.Exec(ctx, node, runtime.ExecSpec{Cmd: cmd, Stdout: &out, Stderr: &out})
		return strings.TrimSpace(out.String()), err
	}
	var state string
	for time.Since(start) < 60*time.Second {
		state, _ = run("systemctl", "is-system-running")
		if state == "running" || state == "degraded" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("systemd %s after %s", state, time.Since(start).Round(time.Millisecond))
	if state != "running" {
		failed, _ := run("systemctl", "--failed", "--no-legend")
		var logs bytes.Buffer
		_ = rt.Logs(ctx, node, &logs)
		t.Fatalf("systemd is %q, failed units:\n%s\nlogs:\n%s", state, failed, logs.String())
	}
	for _, check := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"systemctl", "is-active", "containerd"}, "active"},
		{[]string{"systemctl", "is-enabled", "kubelet"}, "enabled"},
		{[]string{"ctr", "plugins", "ls", "id==cri"}, "ok"},
		{[]string{"readlink", "/opt/cni/bin/bridge"}, "/usr/lib/cni/bridge"},
		{[]string{"sh", "-c", "findmnt -n -o PROPAGATION /"}, "shared"},
		{[]string{"sh", "-c", "test -s /etc/machine-id && test -s /kind/product_uuid && echo identity"}, "identity"},
	} {
		got, err := run(check.cmd...)
		if err != nil || !strings.Contains(got, check.want) {
			t.Errorf("%v: %q (%v), want %q", check.cmd, got, err, check.want)
		}
	}
	conf, err := run("cat", ContainerdConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	status, _ := os.ReadFile("/proc/self/status")
	if want := !capSysResource(string(status)); strings.Contains(conf, "restrict_oom_score_adj = true") != want {
		t.Errorf("restrict_oom_score_adj should be %v on this host:\n%s", want, conf)
	}
}

// entrypointFunctions returns the entrypoint's functions without its call to
// main, with the given paths replaced, for a test to call one of them.
func entrypointFunctions(t *testing.T, replace map[string]string) string {
	t.Helper()
	entries, err := NodeFiles(DefaultContainerdConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Path == EntrypointPath {
			s := strings.Replace(string(e.Data), "\nmain \"$@\"\n", "\n", 1)
			for from, to := range replace {
				if !strings.Contains(s, from) {
					t.Fatalf("entrypoint has no %q", from)
				}
				s = strings.ReplaceAll(s, from, to)
			}
			return s
		}
	}
	t.Fatal("no entrypoint")
	return ""
}

// TestEntrypointDNS runs the entrypoint's resolv.conf step against a copy,
// with ip, iptables and sysctl replaced by shell functions that play a
// network namespace with or without docker's embedded DNS rules.
func TestEntrypointDNS(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("needs bash")
	}
	const dockerRules = `*nat
-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT
-A DOCKER_OUTPUT -d 127.0.0.11/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:38939
-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:36196
-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p udp -m udp --sport 36196 -j SNAT --to-source :53
COMMIT`
	tests := []struct {
		name, conf, rules string
		want              string
		wantIptables      []string
	}{
		{
			name:  "docker embedded DNS",
			conf:  "search example.org\nnameserver 127.0.0.11\noptions ndots:0\n",
			rules: dockerRules,
			want:  "search example.org\noptions ndots:0\nnameserver 172.18.0.2\n",
			wantIptables: []string{
				"-t nat -C PREROUTING -d 172.18.0.2/32 -j DOCKER_OUTPUT",
				"-t nat -A DOCKER_OUTPUT -d 172.18.0.2/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:38939",
				"-t nat -A DOCKER_OUTPUT -d 172.18.0.2/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:36196",
				"-t nat -A PREROUTING -d 172.18.0.2/32 -j DOCKER_OUTPUT",
				"-t nat -A OUTPUT -d 172.18.0.2/32 -j DOCKER_OUTPUT",
			},
		},
		{
			name:  "podman's aardvark: left alone",
			conf:  "search dns.podman\nnameserver 10.89.0.1\n",
			want:  "search dns.podman\nnameserver 10.89.0.1\n",
			rules: "*nat\nCOMMIT",
		},
		{
			name:  "host's systemd-resolved stub dropped",
			conf:  "nameserver 127.0.0.53\nnameserver 192.0.2.1\n",
			want:  "nameserver 192.0.2.1\n",
			rules: "*nat\nCOMMIT",
		},
		{
			name:  "only loopback: kept, with a warning",
			conf:  "nameserver 127.0.0.53\n",
			want:  "nameserver 127.0.0.53\n",
			rules: "*nat\nCOMMIT",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			conf := filepath.Join(dir, "resolv.conf")
			calls := filepath.Join(dir, "calls")
			if err := os.WriteFile(conf, []byte(tt.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			script := entrypointFunctions(t, map[string]string{"local conf=/etc/resolv.conf": "local conf=" + conf}) + `
ip() { echo "2: eth0    inet 172.18.0.2/16 brd 172.18.255.255 scope global eth0"; }
iptables-save() { printf '%s\n' "$FAKE_RULES"; }
iptables() { echo "$*" >>"` + calls + `"; [ "$3" != -C ]; }
sysctl() { :; }
fix_dns
`
			cmd := exec.Command("bash", "-c", script)
			cmd.Env = append(os.Environ(), "FAKE_RULES="+tt.rules)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("fix_dns: %v\n%s", err, out)
			}
			got, _ := os.ReadFile(conf)
			if string(got) != tt.want {
				t.Errorf("resolv.conf\n%s\nwant\n%s", got, tt.want)
			}
			rec, _ := os.ReadFile(calls)
			if gotCalls := strings.TrimSpace(string(rec)); gotCalls != strings.Join(tt.wantIptables, "\n") {
				t.Errorf("iptables calls\n%s\nwant\n%s", gotCalls, strings.Join(tt.wantIptables, "\n"))
			}
		})
	}
}

// TestBuildBaseCancel stops a real debootstrap half-way: the error says so,
// and the build tree is gone with nothing left mounted.
func TestBuildBaseCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real debootstrap")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("needs debootstrap")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	_, err := BuildBase(ctx, WithCacheDir(dir))
	if err == nil {
		t.Fatal("BuildBase finished in 4s?")
	}
	if !strings.Contains(err.Error(), "signal: killed") && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want it to say it was stopped", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "base", "rootfs-*"))
	if len(left) > 0 {
		t.Errorf("build left %v behind", left)
	}
	if mounts, _ := mountsUnder(dir); len(mounts) > 0 {
		t.Errorf("mounts left: %v", mounts)
	}
}
