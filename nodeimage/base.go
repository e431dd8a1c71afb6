package nodeimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"syscall"
	"text/template"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

const (
	// DefaultBaseImage names the base image BuildBase makes.
	DefaultBaseImage = "kinc/base:bookworm"
	// DefaultSuite is the Debian release the base image is made of.
	DefaultSuite = "bookworm"
	// DefaultMirror is used when the host's apt sources name none.
	DefaultMirror = "http://deb.debian.org/debian"
	// DefaultPauseImage is the sandbox image written into the base image's
	// containerd config: kubeadm's pause for Kubernetes v1.34. Node images
	// for other versions write their own with ContainerdConfig.
	DefaultPauseImage = "registry.k8s.io/pause:3.10.1"

	// ContainerdConfigPath is where the node's containerd reads its config.
	ContainerdConfigPath = "/etc/containerd/config.toml"
	// EntrypointPath is the node's entrypoint; it execs its arguments.
	EntrypointPath = "/usr/local/bin/entrypoint"
	// CNIBinDir is where CNI plugins are found in a node (kind's layout).
	CNIBinDir = "/opt/cni/bin"
	// KubeletPath is where kubelet.service expects the kubelet binary; the
	// unit is skipped while it is absent.
	KubeletPath = "/usr/bin/kubelet"

	// Labels set on the base image.
	LabelSuite   = "io.kinc.base.suite"
	LabelPackage = "io.kinc.base.packages"
)

// BasePackages are installed on top of Debian's minbase: what a node needs
// to run systemd, containerd, the kubelet's helpers and CNI plugins, and
// haproxy for the load-balancer role.
var BasePackages = []string{
	"ca-certificates", "conntrack", "containerd", "containernetworking-plugins",
	"dbus", "ebtables", "ethtool", "gzip", "haproxy", "iproute2", "iptables",
	"kmod", "libseccomp2", "mount", "nftables", "procps", "runc", "socat",
	"systemd", "systemd-sysv", "tar", "util-linux",
}

// Errors a caller may branch on (a test skips, the CLI names the fix).
var (
	ErrNotRoot       = errors.New("building the base image needs root (debootstrap creates device nodes and chroots): run it as root, e.g. with sudo")
	ErrNoDebootstrap = errors.New("debootstrap not found in PATH: install it, e.g. apt-get install debootstrap")
)

// rootfsRecipe changes whenever what is done to the debootstrapped tree
// changes, so that cached layers made the old way are not reused.
const rootfsRecipe = "kinc-base-rootfs-2"

//go:embed files/rootfs files/templates
var nodeFiles embed.FS

// Progress is told when each step of a build starts and ends; the CLI
// prints them ("✓ Bootstrapping Debian bookworm (31s)").
type Progress interface {
	Start(step string)
	End(step string, err error)
}

// BaseOption configures BuildBase.
type BaseOption func(*baseOptions) error

type baseOptions struct {
	mirror     string
	suite      string
	extra      []string
	imageName  string
	output     *Output
	progress   Progress
	log        *slog.Logger
	cacheDir   string
	rebuild    bool
	containerd ContainerdConfig
	geteuid    func() int // a test seam for the root check
}

// WithMirror sets the Debian mirror URL (default: the host's apt mirror, else
// DefaultMirror).
func WithMirror(mirror string) BaseOption {
	return func(o *baseOptions) error {
		u, err := url.Parse(mirror)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") || (u.Host == "" && u.Scheme != "file") {
			return fmt.Errorf("invalid Debian mirror %q: want an http(s):// or file:// URL", mirror)
		}
		o.mirror = strings.TrimSuffix(mirror, "/")
		return nil
	}
}

// WithSuite sets the Debian release (default DefaultSuite).
func WithSuite(suite string) BaseOption {
	return func(o *baseOptions) error {
		if suite == "" || strings.ContainsAny(suite, "/ \t") {
			return fmt.Errorf("invalid Debian suite %q", suite)
		}
		o.suite = suite
		return nil
	}
}

// WithPackages adds Debian packages to BasePackages.
func WithPackages(pkgs ...string) BaseOption {
	return func(o *baseOptions) error {
		for _, p := range pkgs {
			if p == "" || strings.ContainsAny(p, ", \t") {
				return fmt.Errorf("invalid package name %q", p)
			}
		}
		o.extra = append(o.extra, pkgs...)
		return nil
	}
}

// WithImageName names the image (default DefaultBaseImage).
func WithImageName(ref string) BaseOption {
	return func(o *baseOptions) error {
		if _, err := parseTag(ref); err != nil {
			return err
		}
		o.imageName = ref
		return nil
	}
}

// WithOutput also writes the image there (see ParseOutput).
func WithOutput(out Output) BaseOption {
	return func(o *baseOptions) error {
		o.output = &out
		return nil
	}
}

// WithProgress reports each step.
func WithProgress(p Progress) BaseOption {
	return func(o *baseOptions) error {
		o.progress = p
		return nil
	}
}

// WithLogger logs details (debootstrap's output at debug level).
func WithLogger(l *slog.Logger) BaseOption {
	return func(o *baseOptions) error {
		o.log = l
		return nil
	}
}

// WithCacheDir sets the cache directory (default CacheDir()).
func WithCacheDir(dir string) BaseOption {
	return func(o *baseOptions) error {
		o.cacheDir = dir
		return nil
	}
}

// WithRebuild ignores a cached root filesystem and makes it again.
func WithRebuild() BaseOption {
	return func(o *baseOptions) error {
		o.rebuild = true
		return nil
	}
}

// WithContainerdConfig sets the containerd config written into the image.
func WithContainerdConfig(c ContainerdConfig) BaseOption {
	return func(o *baseOptions) error {
		o.containerd = c
		return nil
	}
}

// CacheDir is where kinc keeps what it builds: $XDG_CACHE_HOME/kinc, else
// ~/.cache/kinc.
func CacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kinc"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "kinc"), nil
}

func newBaseOptions(opts []BaseOption) (*baseOptions, error) {
	o := &baseOptions{
		suite:      DefaultSuite,
		imageName:  DefaultBaseImage,
		containerd: DefaultContainerdConfig(),
		geteuid:    os.Geteuid,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.mirror == "" {
		o.mirror = HostMirror(o.suite)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.progress == nil {
		o.progress = noProgress{}
	}
	if o.cacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return nil, err
		}
		o.cacheDir = d
	}
	return o, nil
}

type noProgress struct{}

func (noProgress) Start(string)      {}
func (noProgress) End(string, error) {}

// step runs fn bracketed by progress reports.
func (o *baseOptions) step(name string, fn func() error) error {
	start := time.Now()
	err := runStep(o.progress, name, fn)
	o.log.Debug("step done", "step", name, "took", time.Since(start).Round(time.Millisecond), "err", err)
	return err
}

// runStep runs fn between p.Start and p.End.
func runStep(p Progress, name string, fn func() error) error {
	p.Start(name)
	err := fn()
	p.End(name, err)
	return err
}

func (o *baseOptions) packages() []string {
	seen := map[string]bool{}
	var pkgs []string
	for _, p := range append(append([]string{}, BasePackages...), o.extra...) {
		if !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	return pkgs
}

// rootfsKey names the cached root filesystem layer: everything that decides
// what debootstrap and the clean-up produce.
func (o *baseOptions) rootfsKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s\n", rootfsRecipe, goruntime.GOARCH, o.suite, o.mirror, strings.Join(o.packages(), ","))
	return fmt.Sprintf("%x", h.Sum(nil))[:16]
}

// BuildBase makes the base image: Debian (debootstrap, no daemon) with what
// a node needs, plus kinc's own files. The root filesystem layer is cached by
// its inputs under the cache directory, so a second build takes seconds.
// With WithOutput, the image is also written there.
func BuildBase(ctx context.Context, opts ...BaseOption) (v1.Image, error) {
	o, err := newBaseOptions(opts)
	if err != nil {
		return nil, err
	}
	rootfs, err := o.rootfsLayer(ctx)
	if err != nil {
		return nil, err
	}
	var img v1.Image
	err = o.step("Adding kinc's node files", func() error {
		files, err := NodeFilesLayer(ctx, o.containerd)
		if err != nil {
			return err
		}
		img, err = baseImage(o, rootfs, files)
		return err
	})
	if err != nil {
		return nil, err
	}
	if o.output != nil {
		err := o.step(fmt.Sprintf("Writing %s", o.output), func() error {
			return WriteImage(ctx, img, o.imageName, *o.output)
		})
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

// CachedBaseArchive returns a docker-archive of the base image (the default
// one unless options say otherwise), named DefaultBaseImage or WithImageName,
// ready for Runtime.LoadImage. It builds the image the first time (needs
// root and debootstrap, about two minutes) and afterwards returns the archive
// kept in the cache directory in about a second.
func CachedBaseArchive(ctx context.Context, opts ...BaseOption) (string, error) {
	o, err := newBaseOptions(opts)
	if err != nil {
		return "", err
	}
	img, err := BuildBase(ctx, opts...)
	if err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(o.cacheDir, "base")
	prefix := strings.NewReplacer("/", "_", ":", "_").Replace(o.imageName) + "-"
	p := filepath.Join(dir, prefix+digest.Hex[:16]+".tar")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := WriteImage(ctx, img, o.imageName, Output{Format: DockerArchive, Path: p}); err != nil {
		return "", err
	}
	// Archives of older builds of the same image are stale now. Those made
	// in the last hour are left to whoever may be about to open them.
	old, _ := filepath.Glob(filepath.Join(dir, prefix+"*.tar"))
	for _, f := range old {
		if fi, err := os.Stat(f); err == nil && f != p && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(f)
		}
	}
	return p, nil
}

func baseImage(o *baseOptions, rootfs, files v1.Layer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg := &v1.ConfigFile{
		Architecture: goruntime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: Epoch},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{EntrypointPath},
			Cmd:        []string{"/sbin/init"},
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				// systemd behaves as in a container when PID 1 has it.
				"container=docker",
			},
			// systemd halts cleanly on SIGRTMIN+3.
			StopSignal: "SIGRTMIN+3",
			Labels: map[string]string{
				LabelSuite:   o.suite,
				LabelPackage: strings.Join(o.packages(), ","),
			},
		},
	}
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting image config: %w", err)
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: rootfs, History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: fmt.Sprintf("kinc: debootstrap --variant=minbase %s", o.suite)}},
		mutate.Addendum{Layer: files, History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "kinc: node files"}},
	)
	if err != nil {
		return nil, fmt.Errorf("adding layers: %w", err)
	}
	return img, nil
}

// ContainerdConfig are the settings of the node's containerd config that
// differ between clusters or hosts.
type ContainerdConfig struct {
	// SandboxImage is kubeadm's pause image for the Kubernetes version.
	SandboxImage string
	// SystemdCgroup matches the kubelet's cgroupDriver ("systemd": true).
	SystemdCgroup bool
	// RestrictOOMScoreAdj for nodes that cannot lower oom_score_adj; the
	// entrypoint also turns it on by itself when it finds so at boot.
	RestrictOOMScoreAdj bool
	// Snapshotter is containerd's snapshotter, "overlayfs" by default.
	Snapshotter string
}

// DefaultContainerdConfig is the config the base image ships.
func DefaultContainerdConfig() ContainerdConfig {
	return ContainerdConfig{SandboxImage: DefaultPauseImage, Snapshotter: "overlayfs"}
}

// Render returns the config.toml for ContainerdConfigPath.
func (c ContainerdConfig) Render() ([]byte, error) {
	if c.SandboxImage == "" {
		c.SandboxImage = DefaultPauseImage
	}
	if c.Snapshotter == "" {
		c.Snapshotter = "overlayfs"
	}
	if strings.ContainsAny(c.SandboxImage+c.Snapshotter, "\"\\\n") {
		return nil, fmt.Errorf("invalid containerd setting %q / %q", c.SandboxImage, c.Snapshotter)
	}
	text, err := nodeFiles.ReadFile("files/templates/containerd-config.toml")
	if err != nil {
		return nil, err
	}
	t, err := template.New("config.toml").Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("parsing containerd config template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, c); err != nil {
		return nil, fmt.Errorf("rendering containerd config: %w", err)
	}
	return buf.Bytes(), nil
}

// NodeFiles returns kinc's own files for a node (entrypoint, containerd
// config, kubelet.service and its kubeadm drop-in, kubelet enabled), as
// layer entries.
func NodeFiles(c ContainerdConfig) ([]Entry, error) {
	var entries []Entry
	err := fs.WalkDir(nodeFiles, "files/rootfs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := nodeFiles.ReadFile(p)
		if err != nil {
			return err
		}
		target := strings.TrimPrefix(p, "files/rootfs")
		mode := fs.FileMode(0o644)
		if path.Base(path.Dir(target)) == "bin" {
			mode = 0o755
		}
		entries = append(entries, Entry{Path: target, Mode: mode, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading embedded node files: %w", err)
	}
	conf, err := c.Render()
	if err != nil {
		return nil, err
	}
	entries = append(entries,
		Entry{Path: ContainerdConfigPath, Mode: 0o644, Data: conf},
		Entry{Path: "/etc/systemd/system/multi-user.target.wants/kubelet.service", Mode: fs.ModeSymlink | 0o777, Linkname: "/etc/systemd/system/kubelet.service"},
	)
	return entries, nil
}

// NodeFilesLayer is NodeFiles as a small in-memory layer.
func NodeFilesLayer(ctx context.Context, c ContainerdConfig) (v1.Layer, error) {
	entries, err := NodeFiles(c)
	if err != nil {
		return nil, err
	}
	return LayerFromEntries(ctx, entries, InMemory())
}

// HostMirror returns the Debian mirror this machine's apt uses for suite
// (deb822 sources or sources.list), or DefaultMirror.
func HostMirror(suite string) string {
	var files []string
	files = append(files, "/etc/apt/sources.list")
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append(files, more...)
	for _, f := range files {
		if !strings.HasSuffix(f, ".list") && !strings.HasSuffix(f, ".sources") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if m := mirrorFromSources(string(data), suite); m != "" {
			return m
		}
	}
	return DefaultMirror
}

// mirrorFromSources finds, in a sources.list or deb822 .sources text, the
// URI that serves suite's main component.
func mirrorFromSources(text, suite string) string {
	// One-line format: deb [options] URI suite components...
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) > 0 {
				fields = fields[1:]
			}
		}
		if len(fields) >= 2 && fields[1] == suite {
			return strings.TrimSuffix(fields[0], "/")
		}
	}
	// deb822: stanzas separated by blank lines.
	for _, stanza := range strings.Split(text, "\n\n") {
		var types, uris, suites []string
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok || strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "types":
				types = strings.Fields(v)
			case "uris":
				uris = strings.Fields(v)
			case "suites":
				suites = strings.Fields(v)
			}
		}
		if len(uris) == 0 || !contains(types, "deb") || !contains(suites, suite) {
			continue
		}
		return strings.TrimSuffix(uris[0], "/")
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rootfsLayer returns the cached root filesystem layer for these options,
// making it first if needed. A lock keeps concurrent builds (two test
// packages, two terminals) from doing the work twice.
func (o *baseOptions) rootfsLayer(ctx context.Context) (v1.Layer, error) {
	dir := filepath.Join(o.cacheDir, "base")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cache directory: %w", err)
	}
	key := o.rootfsKey()
	layerPath := filepath.Join(dir, "rootfs-"+key+".tar.gz")
	metaPath := filepath.Join(dir, "rootfs-"+key+".json")
	if !o.rebuild {
		if l, err := readCachedLayer(layerPath, metaPath); err == nil {
			o.log.Debug("reusing cached root filesystem", "layer", layerPath)
			_ = o.step(fmt.Sprintf("Using the cached Debian %s root filesystem", o.suite), func() error { return nil })
			return l, nil
		}
	}
	if o.geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return nil, ErrNoDebootstrap
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "build.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Someone may have built it while we waited for the lock.
	if !o.rebuild {
		if l, err := readCachedLayer(layerPath, metaPath); err == nil {
			return l, nil
		}
	}
	tmp, err := os.MkdirTemp(dir, "rootfs-build-")
	if err != nil {
		return nil, fmt.Errorf("creating build directory: %w", err)
	}
	defer func() {
		if err := removeTree(tmp); err != nil {
			o.log.Warn("leaving build directory behind", "dir", tmp, "err", err)
		}
	}()
	root := filepath.Join(tmp, "rootfs")
	err = o.step(fmt.Sprintf("Bootstrapping Debian %s", o.suite), func() error {
		return o.debootstrap(ctx, root, filepath.Join(dir, "debs"))
	})
	if err != nil {
		return nil, err
	}
	if err := o.step("Preparing the root filesystem", func() error { return prepareRootfs(root) }); err != nil {
		return nil, err
	}
	var layer v1.Layer
	err = o.step("Packing the root filesystem", func() error {
		l, err := LayerFromDir(ctx, root, WithLayerDir(tmp))
		if err != nil {
			return err
		}
		layer, err = cacheLayer(l, layerPath, metaPath)
		return err
	})
	if err != nil {
		return nil, err
	}
	return layer, nil
}

type layerMeta struct {
	Digest string `json:"digest"`
	DiffID string `json:"diffID"`
	Size   int64  `json:"size"`
}

// cacheLayer moves a layer made by this package to layerPath and records its
// hashes beside it; the metadata is written last, so a half-made cache
// entry is never read.
func cacheLayer(l v1.Layer, layerPath, metaPath string) (v1.Layer, error) {
	src, ok := LayerFile(l)
	if !ok {
		return nil, fmt.Errorf("caching layer: not a file layer")
	}
	digest, _ := l.Digest()
	diffID, _ := l.DiffID()
	size, _ := l.Size()
	meta, err := json.Marshal(layerMeta{Digest: digest.String(), DiffID: diffID.String(), Size: size})
	if err != nil {
		return nil, err
	}
	// Readable by all: the cache may be shared by tests running as others.
	if err := os.Chmod(src, 0o644); err != nil {
		return nil, fmt.Errorf("caching layer: %w", err)
	}
	if err := os.Rename(src, layerPath); err != nil {
		return nil, fmt.Errorf("caching layer: %w", err)
	}
	if err := writeFileAtomic(metaPath, meta, 0o644); err != nil {
		return nil, fmt.Errorf("caching layer: %w", err)
	}
	return &fileLayer{path: layerPath, digest: digest, diffID: diffID, size: size}, nil
}

func readCachedLayer(layerPath, metaPath string) (v1.Layer, error) {
	data, err := os.ReadFile(metaPath)
	if err != nil {
		return nil, err
	}
	var m layerMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("reading %q: %w", metaPath, err)
	}
	digest, err := v1.NewHash(m.Digest)
	if err != nil {
		return nil, err
	}
	diffID, err := v1.NewHash(m.DiffID)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(layerPath)
	if err != nil {
		return nil, err
	}
	if fi.Size() != m.Size {
		return nil, fmt.Errorf("cached layer %q has %d bytes, want %d", layerPath, fi.Size(), m.Size)
	}
	return &fileLayer{path: layerPath, digest: digest, diffID: diffID, size: m.Size}, nil
}

// lockFile takes an exclusive lock on p, waiting for it as long as ctx lets.
func lockFile(ctx context.Context, p string) (func(), error) {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock %q: %w", p, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %q: %w", p, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another build holding %q: %w", p, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// debootstrap installs Debian into root, keeping downloaded packages in
// debs so that a rebuild does not fetch them again.
func (o *baseOptions) debootstrap(ctx context.Context, root, debs string) error {
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return fmt.Errorf("creating package cache: %w", err)
	}
	args := []string{
		"--variant=minbase",
		"--include=" + strings.Join(o.packages(), ","),
		"--cache-dir=" + debs,
		o.suite, root, o.mirror,
	}
	o.log.Info("running debootstrap", "args", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	// On cancel, stop dpkg and the chroot too, not only debootstrap, before
	// the build tree is removed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out := &tailLog{log: o.log, keep: 15}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	out.flush()
	if err != nil {
		return fmt.Errorf("bootstrapping Debian %s from %s: %w:\n%s", o.suite, o.mirror, err, strings.Join(out.last, "\n"))
	}
	return nil
}

// tailLog logs a command's output line by line and keeps its last lines for
// the error message.
type tailLog struct {
	log     *slog.Logger
	keep    int
	partial []byte
	last    []string
}

func (t *tailLog) Write(p []byte) (int, error) {
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.line(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	return len(p), nil
}

func (t *tailLog) flush() {
	if len(t.partial) > 0 {
		t.line(string(t.partial))
		t.partial = nil
	}
}

func (t *tailLog) line(s string) {
	s = strings.TrimRight(s, "\r")
	t.log.Debug(s, "from", "debootstrap")
	t.last = append(t.last, s)
	if len(t.last) > t.keep {
		t.last = t.last[1:]
	}
}

// writeFileAtomic writes data to p through a temporary file and a rename.
func writeFileAtomic(p string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), perm)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeTree deletes a build tree, first detaching whatever debootstrap may
// have left mounted in it (/proc, /sys): deleting through a mount of the
// host's /proc or /dev would be a disaster, so it refuses when one remains.
func removeTree(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	mounts, err := mountsUnder(abs)
	if err != nil {
		return fmt.Errorf("listing mounts under %q: %w", abs, err)
	}
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmounting %q: %w", m, err)
		}
	}
	if mounts, err := mountsUnder(abs); err != nil || len(mounts) > 0 {
		return fmt.Errorf("not removing %q: still mounted: %v %v", abs, mounts, err)
	}
	return os.RemoveAll(abs)
}
