package nodeimage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// Epoch is the modification time given to every entry of the layers and to
// the image config this package writes, so that the same tree always gives
// the same digest.
var Epoch = time.Unix(0, 0).UTC()

// Entry is one file, directory or link of a layer built by LayerFromEntries.
type Entry struct {
	// Path inside the image, absolute or not: "/usr/bin/kubelet".
	Path string
	// Mode holds the permission bits and the type: 0 or fs.ModeDir or
	// fs.ModeSymlink. Zero permission bits mean 0644 (files) or 0755 (dirs).
	Mode     fs.FileMode
	UID, GID int
	// Data is the content of a regular file; when nil, Source names a file
	// on the host to copy instead (read when the layer is built).
	Data   []byte
	Source string
	// Linkname is the target of a symlink.
	Linkname string
}

// LayerOption configures LayerFromDir and LayerFromEntries.
type LayerOption func(*layerOptions) error

type layerOptions struct {
	tempDir  string
	inMemory bool
	level    int
	skip     func(rel string, d fs.DirEntry) bool
}

// InMemory keeps the compressed layer in memory instead of a file: for small
// layers (configuration files, a version stamp) that nobody cleans up after.
func InMemory() LayerOption {
	return func(o *layerOptions) error {
		o.inMemory = true
		return nil
	}
}

// WithLayerDir says where the compressed layer file is kept (default: the
// system temp dir). The file lives as long as the layer is used: callers that
// keep images, like the cache, put it in their own directory.
func WithLayerDir(dir string) LayerOption {
	return func(o *layerOptions) error {
		o.tempDir = dir
		return nil
	}
}

// WithCompressionLevel sets the gzip level (default gzip.DefaultCompression).
func WithCompressionLevel(level int) LayerOption {
	return func(o *layerOptions) error {
		if level < gzip.HuffmanOnly || level > gzip.BestCompression {
			return fmt.Errorf("invalid gzip level %d", level)
		}
		o.level = level
		return nil
	}
}

// WithSkip leaves out of LayerFromDir every path (relative to the root,
// slash-separated, no leading slash) for which skip returns true; a skipped
// directory is left out with its contents.
func WithSkip(skip func(rel string, d fs.DirEntry) bool) LayerOption {
	return func(o *layerOptions) error {
		o.skip = skip
		return nil
	}
}

func newLayerOptions(opts []LayerOption) (*layerOptions, error) {
	o := &layerOptions{level: gzip.DefaultCompression}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// LayerFromDir makes a gzip-compressed layer of the tree under root: entries
// sorted, ownership, modes, symlinks, hard links and security.capability
// kept, every mtime set to Epoch, device nodes and sockets left out (the
// runtime provides /dev). The same tree gives the same digest.
func LayerFromDir(ctx context.Context, root string, opts ...LayerOption) (v1.Layer, error) {
	o, err := newLayerOptions(opts)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("reading layer root: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("layer root %q is not a directory", root)
	}
	return writeLayer(o, func(tw *tar.Writer) error {
		return tarTree(ctx, tw, root, o.skip)
	})
}

// LayerFromEntries makes a layer of the given entries, sorted by path. The
// parent directories of every entry are added (root-owned, 0755) unless
// listed, so that the layer extracts anywhere.
func LayerFromEntries(ctx context.Context, entries []Entry, opts ...LayerOption) (v1.Layer, error) {
	o, err := newLayerOptions(opts)
	if err != nil {
		return nil, err
	}
	byPath := map[string]Entry{}
	for _, e := range entries {
		p := strings.Trim(path.Clean("/"+e.Path), "/")
		if p == "" {
			return nil, fmt.Errorf("layer entry with an empty path")
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("layer entry %q listed twice", e.Path)
		}
		e.Path = p
		byPath[p] = e
	}
	for p := range byPath {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, ok := byPath[dir]; !ok {
				byPath[dir] = Entry{Path: dir, Mode: fs.ModeDir | 0o755}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return writeLayer(o, func(tw *tar.Writer) error {
		for _, p := range paths {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := writeEntry(tw, byPath[p]); err != nil {
				return fmt.Errorf("adding %q: %w", "/"+p, err)
			}
		}
		return nil
	})
}

func writeEntry(tw *tar.Writer, e Entry) error {
	noPerm := e.Mode.Perm() == 0
	hdr := &tar.Header{Name: e.Path, Uid: e.UID, Gid: e.GID, ModTime: Epoch, Format: tar.FormatPAX}
	hdr.Mode = modeBits(e.Mode)
	switch {
	case e.Mode.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, e.Path+"/"
		if noPerm {
			hdr.Mode |= 0o755
		}
		return tw.WriteHeader(hdr)
	case e.Mode&fs.ModeSymlink != 0:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Linkname
		if noPerm {
			hdr.Mode |= 0o777
		}
		return tw.WriteHeader(hdr)
	case e.Mode.IsRegular():
		if noPerm {
			hdr.Mode |= 0o644
		}
		hdr.Typeflag = tar.TypeReg
		if e.Data != nil || e.Source == "" {
			hdr.Size = int64(len(e.Data))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err := tw.Write(e.Data)
			return err
		}
		f, err := os.Open(e.Source)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		hdr.Size = fi.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	return fmt.Errorf("unsupported mode %v", e.Mode)
}

// modeBits turns an fs.FileMode into the permission bits of a tar header.
func modeBits(m fs.FileMode) int64 {
	bits := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

type inode struct{ dev, ino uint64 }

// tarTree writes every entry under root in lexical order (filepath.WalkDir
// order), which is what makes the layer deterministic.
func tarTree(ctx context.Context, tw *tar.Writer, root string, skip func(string, fs.DirEntry) bool) error {
	links := map[inode]string{}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("reading ownership of %q: no stat data", p)
		}
		mode := fi.Mode()
		hdr := &tar.Header{
			Name:    rel,
			Mode:    modeBits(mode),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: Epoch,
			Format:  tar.FormatPAX,
		}
		switch {
		case mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		case mode&fs.ModeNamedPipe != 0:
			hdr.Typeflag = tar.TypeFifo
		case mode.IsRegular():
			if st.Nlink > 1 {
				key := inode{uint64(st.Dev), st.Ino}
				if first, seen := links[key]; seen {
					hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
					return tw.WriteHeader(hdr)
				}
				links[key] = rel
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		default:
			return nil // device nodes and sockets: the runtime provides them
		}
		if capability := fileCapability(p); capability != "" {
			hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": capability}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("adding %q: %w", rel, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return fmt.Errorf("adding %q: %w", rel, err)
		}
		return nil
	})
}

// fileCapability returns the security.capability xattr of p (binaries such as
// ping need it), or "" when there is none.
func fileCapability(p string) string {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, "security.capability", buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}

// writeLayer runs fill on a tar stream, gzips it into a file, and hashes
// both the compressed and the uncompressed bytes on the way, so nothing is
// read twice.
func writeLayer(o *layerOptions, fill func(*tar.Writer) error) (l v1.Layer, err error) {
	var (
		f   *os.File
		mem bytes.Buffer
		out io.Writer = &mem
	)
	if !o.inMemory {
		f, err = os.CreateTemp(o.tempDir, "kinc-layer-*.tar.gz")
		if err != nil {
			return nil, fmt.Errorf("creating layer file: %w", err)
		}
		out = f
		defer func() {
			if err != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}()
	}
	compressedHash, diffHash := sha256.New(), sha256.New()
	counter := &countWriter{w: io.MultiWriter(out, compressedHash)}
	buffered := bufio.NewWriterSize(counter, 1<<20)
	zw, err := gzip.NewWriterLevel(buffered, o.level)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash))
	if err := fill(tw); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	for _, c := range []func() error{tw.Close, zw.Close, buffered.Flush} {
		if err := c(); err != nil {
			return nil, fmt.Errorf("writing layer: %w", err)
		}
	}
	fl := &fileLayer{digest: hashOf(compressedHash), diffID: hashOf(diffHash), size: counter.n}
	if f == nil {
		fl.data = mem.Bytes()
		return fl, nil
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	fl.path = f.Name()
	return fl, nil
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fileLayer is a gzipped layer, in a file or in memory, whose hashes are
// already known.
type fileLayer struct {
	path           string
	data           []byte
	digest, diffID v1.Hash
	size           int64
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)     { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) {
	return types.OCILayer, nil
}

func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	if l.path == "" {
		return io.NopCloser(bytes.NewReader(l.data)), nil
	}
	return os.Open(l.path)
}

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading layer %q: %w", l.path, err)
	}
	return &readCloser{Reader: zr, close: func() error { return errors.Join(zr.Close(), f.Close()) }}, nil
}

// LayerFile returns the file holding a layer made by this package, so that
// callers can move it or remove it once the layer is written elsewhere.
func LayerFile(l v1.Layer) (string, bool) {
	fl, ok := l.(*fileLayer)
	if !ok || fl.path == "" {
		return "", false
	}
	return fl.path, true
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

// maskedUnits make no sense in a node container (hardware, consoles, kernel
// filesystems the runtime provides, periodic maintenance) or fail in one.
var maskedUnits = []string{
	"apt-daily-upgrade.timer", "apt-daily.timer", "console-getty.service",
	"dpkg-db-backup.timer", "e2scrub_all.timer", "e2scrub_reap.service",
	"fstrim.timer", "getty.target", "kmod-static-nodes.service",
	"proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount",
	"sys-fs-fuse-connections.mount", "sys-kernel-config.mount",
	"sys-kernel-debug.mount", "sys-kernel-tracing.mount", "systemd-binfmt.service",
	"systemd-firstboot.service", "systemd-journald-audit.socket",
	"systemd-machine-id-commit.service", "systemd-modules-load.service",
	"systemd-pstore.service", "systemd-remount-fs.service",
	"systemd-udev-settle.service", "systemd-udev-trigger.service",
	"systemd-udevd-control.socket", "systemd-udevd-kernel.socket",
	"systemd-udevd.service",
}

// emptiedDirs keep their directory but lose their contents: package caches,
// documentation, logs, and what the runtime mounts anyway.
var emptiedDirs = []string{
	"dev", "proc", "run", "sys", "tmp", "var/tmp",
	"var/cache/apt", "var/lib/apt/lists", "var/cache/debconf", "var/cache/ldconfig",
	"var/log", "usr/share/doc", "usr/share/man", "usr/share/info",
	"usr/share/locale", "usr/share/lintian", "usr/share/bug",
}

// Later apt installs in a node stay as small as the base.
const dpkgNoDocs = `# kinc: no documentation, manuals or translations in node images.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
`

// The kernel log is the host's: reading it would fill each node's journal
// with every other node's messages.
const journaldConf = `[Journal]
ReadKMsg=no
`

// prepareRootfs turns a debootstrapped tree into a node's root filesystem:
// smaller, without a machine identity, with units that fail in containers
// masked, haproxy not started by default (the load balancer starts it) and
// CNI plugins where kubelet and kind's manifests look for them.
func prepareRootfs(root string) error {
	at := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	if _, err := os.Lstat(at("sbin/init")); err != nil {
		return fmt.Errorf("checking the root filesystem: no /sbin/init: %w", err)
	}
	for _, d := range emptiedDirs {
		if err := emptyDir(at(d)); err != nil {
			return err
		}
	}
	// Identity and host files the runtime provides per container.
	for p, content := range map[string]string{
		"etc/machine-id":                                "",
		"etc/hostname":                                  "",
		"etc/resolv.conf":                               "",
		"etc/hosts":                                     "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"etc/dpkg/dpkg.cfg.d/kinc-nodoc":                dpkgNoDocs,
		"etc/systemd/journald.conf.d/kinc.conf":         journaldConf,
		"etc/systemd/system/containerd.service.d/.keep": "",
	} {
		if err := os.MkdirAll(filepath.Dir(at(p)), 0o755); err != nil {
			return err
		}
		if err := os.Remove(at(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.WriteFile(at(p), []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing /%s: %w", p, err)
		}
	}
	// Nodes use the runc v2 shim only; the legacy shims are 18 MB.
	for _, p := range []string{"var/lib/dbus/machine-id", "usr/bin/containerd-shim", "usr/bin/containerd-shim-runc-v1"} {
		if err := os.Remove(at(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	// Only what kinc enables starts: no timers, gettys or haproxy by default.
	for _, pattern := range []string{
		"etc/systemd/system/timers.target.wants/*",
		"etc/systemd/system/getty.target.wants/*",
		"etc/systemd/system/sysinit.target.wants/systemd-pstore.service",
		"etc/systemd/system/multi-user.target.wants/haproxy.service",
		"etc/systemd/system/multi-user.target.wants/e2scrub_reap.service",
	} {
		matches, _ := filepath.Glob(at(pattern))
		for _, m := range matches {
			if err := os.Remove(m); err != nil {
				return err
			}
		}
	}
	for _, u := range maskedUnits {
		if err := replaceSymlink("/dev/null", at("etc/systemd/system/"+u)); err != nil {
			return err
		}
	}
	if err := replaceSymlink("/lib/systemd/system/multi-user.target", at("etc/systemd/system/default.target")); err != nil {
		return err
	}
	if _, err := os.Lstat(at("etc/systemd/system/multi-user.target.wants/containerd.service")); err != nil {
		if err := replaceSymlink("/lib/systemd/system/containerd.service", at("etc/systemd/system/multi-user.target.wants/containerd.service")); err != nil {
			return err
		}
	}
	return linkCNIPlugins(root)
}

// linkCNIPlugins makes /opt/cni/bin a real directory of links to Debian's
// plugins in /usr/lib/cni: plugins a user or a node image adds go beside
// them, and replace them by name.
func linkCNIPlugins(root string) error {
	bin := filepath.Join(root, "opt/cni/bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	plugins, err := os.ReadDir(filepath.Join(root, "usr/lib/cni"))
	if err != nil {
		return fmt.Errorf("listing CNI plugins: %w", err)
	}
	for _, p := range plugins {
		if err := replaceSymlink("/usr/lib/cni/"+p.Name(), filepath.Join(bin, p.Name())); err != nil {
			return err
		}
	}
	return nil
}

func replaceSymlink(target, link string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, link); err != nil {
		return fmt.Errorf("linking %q: %w", link, err)
	}
	return nil
}

// emptyDir removes what dir holds, never crossing into a mount.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
