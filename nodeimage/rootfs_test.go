package nodeimage

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// makeTree builds a small tree with every kind of entry a root filesystem
// holds.
func makeTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "etc/private"), 0o700))
	must(os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky))
	must(os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("#!/bin/sh\necho tool\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/su"), []byte("suid"), 0o755))
	must(os.Chmod(filepath.Join(root, "usr/bin/su"), 0o755|os.ModeSetuid))
	must(os.WriteFile(filepath.Join(root, "etc/private/key"), []byte("secret"), 0o600))
	must(os.Symlink("tool", filepath.Join(root, "usr/bin/tool-link")))
	must(os.Symlink("/nowhere", filepath.Join(root, "etc/dangling")))
	must(os.Link(filepath.Join(root, "usr/bin/tool"), filepath.Join(root, "usr/bin/tool-hard")))
	must(syscall.Mkfifo(filepath.Join(root, "tmp/fifo"), 0o644))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(root, "etc/private/key"), 1234, 5678))
		// A device node: left out of layers, the runtime makes /dev.
		must(syscall.Mknod(filepath.Join(root, "tmp/null"), syscall.S_IFCHR|0o666, 1<<8|3))
	}
	return root
}

// layerHeaders reads a layer's tar headers by name.
func layerHeaders(t *testing.T, l v1.Layer) (map[string]*tar.Header, []string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	headers := map[string]*tar.Header{}
	var order []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return headers, order
		}
		if err != nil {
			t.Fatal(err)
		}
		headers[h.Name] = h
		order = append(order, h.Name)
	}
}

func TestLayerFromDir(t *testing.T) {
	ctx := context.Background()
	root := makeTree(t)
	l1, err := LayerFromDir(ctx, root, WithLayerDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	l2, err := LayerFromDir(ctx, root, InMemory())
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := l1.Digest()
	d2, _ := l2.Digest()
	if d1 != d2 {
		t.Errorf("same tree, different digests: %s, %s", d1, d2)
	}
	if err := validate.Layer(l1); err != nil {
		t.Errorf("validate.Layer: %v", err)
	}

	headers, order := layerHeaders(t, l1)
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Errorf("entries not sorted: %q before %q", order[i-1], order[i])
		}
	}
	tests := []struct {
		name     string
		typ      byte
		mode     int64
		linkname string
	}{
		{"usr/", tar.TypeDir, 0o755, ""},
		{"etc/private/", tar.TypeDir, 0o700, ""},
		{"tmp/", tar.TypeDir, 0o1777, ""},
		{"usr/bin/tool", tar.TypeReg, 0o755, ""},
		{"usr/bin/su", tar.TypeReg, 0o4755, ""},
		{"etc/private/key", tar.TypeReg, 0o600, ""},
		{"usr/bin/tool-link", tar.TypeSymlink, 0o777, "tool"},
		{"etc/dangling", tar.TypeSymlink, 0o777, "/nowhere"},
		// Sorted first, so the file; its other name links to it.
		{"usr/bin/tool-hard", tar.TypeLink, 0o755, "usr/bin/tool"},
		{"tmp/fifo", tar.TypeFifo, 0o644, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, ok := headers[tt.name]
			if !ok {
				t.Fatalf("no entry %q in %v", tt.name, order)
			}
			if h.Typeflag != tt.typ || h.Mode != tt.mode || h.Linkname != tt.linkname {
				t.Errorf("got type %c mode %o link %q, want %c %o %q", h.Typeflag, h.Mode, h.Linkname, tt.typ, tt.mode, tt.linkname)
			}
			if !h.ModTime.Equal(Epoch) {
				t.Errorf("mtime %v, want %v", h.ModTime, Epoch)
			}
		})
	}
	if h := headers["tmp/null"]; h != nil {
		t.Errorf("device node kept: %+v", h)
	}
	if os.Geteuid() == 0 {
		if h := headers["etc/private/key"]; h.Uid != 1234 || h.Gid != 5678 {
			t.Errorf("ownership %d:%d, want 1234:5678", h.Uid, h.Gid)
		}
	}

	// Any change to the tree changes the digest.
	if err := os.WriteFile(filepath.Join(root, "usr/bin/tool"), []byte("changed"), 0o755); err != nil {
		t.Fatal(err)
	}
	l3, err := LayerFromDir(ctx, root, InMemory())
	if err != nil {
		t.Fatal(err)
	}
	if d3, _ := l3.Digest(); d3 == d1 {
		t.Error("changed tree, same digest")
	}

	// A whole image of it is valid.
	img, err := mutate.AppendLayers(empty.Image, l1)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
}

func TestLayerFromDirSkip(t *testing.T) {
	root := makeTree(t)
	l, err := LayerFromDir(context.Background(), root, InMemory(), WithSkip(func(rel string, d fs.DirEntry) bool {
		return rel == "etc/private" || strings.HasSuffix(rel, "-link")
	}))
	if err != nil {
		t.Fatal(err)
	}
	headers, _ := layerHeaders(t, l)
	for _, gone := range []string{"etc/private/", "etc/private/key", "usr/bin/tool-link"} {
		if _, ok := headers[gone]; ok {
			t.Errorf("%s not skipped", gone)
		}
	}
	if _, ok := headers["usr/bin/tool"]; !ok {
		t.Error("usr/bin/tool skipped too")
	}
}

func TestLayerFromDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		root string
		opts []LayerOption
		want string
	}{
		{"missing root", context.Background(), filepath.Join(t.TempDir(), "nope"), nil, "reading layer root"},
		{"root is a file", context.Background(), file, nil, "is not a directory"},
		{"bad level", context.Background(), t.TempDir(), []LayerOption{WithCompressionLevel(42)}, "invalid gzip level"},
		{"cancelled", ctx, makeTree(t), nil, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			_, err := LayerFromDir(tt.ctx, tt.root, append([]LayerOption{WithLayerDir(tmp)}, tt.opts...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("left %d files behind after failing", len(left))
			}
		})
	}
}

func TestLayerFromEntries(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "kubelet")
	if err := os.WriteFile(src, []byte("ELF kubelet"), 0o600); err != nil {
		t.Fatal(err)
	}
	entries := []Entry{
		{Path: "/usr/bin/kubelet", Mode: 0o755, Source: src},
		{Path: "kind/version", Data: []byte("v1.34.4\n")},
		{Path: "/kind/images", Mode: fs.ModeDir | 0o700},
		{Path: "/etc/systemd/system/multi-user.target.wants/kubelet.service", Mode: fs.ModeSymlink, Linkname: "/etc/systemd/system/kubelet.service"},
		{Path: "/etc/kubernetes/admin.conf", Data: []byte("x"), UID: 10, GID: 20, Mode: 0o600},
	}
	l, err := LayerFromEntries(ctx, entries, InMemory())
	if err != nil {
		t.Fatal(err)
	}
	headers, order := layerHeaders(t, l)
	want := []string{
		"etc/", "etc/kubernetes/", "etc/kubernetes/admin.conf", "etc/systemd/", "etc/systemd/system/",
		"etc/systemd/system/multi-user.target.wants/", "etc/systemd/system/multi-user.target.wants/kubelet.service",
		"kind/", "kind/images/", "kind/version", "usr/", "usr/bin/", "usr/bin/kubelet",
	}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("entries\n%v\nwant\n%v", order, want)
	}
	for name, check := range map[string]func(*tar.Header) bool{
		"usr/bin/kubelet":           func(h *tar.Header) bool { return h.Mode == 0o755 && h.Size == int64(len("ELF kubelet")) },
		"kind/version":              func(h *tar.Header) bool { return h.Mode == 0o644 && h.Size == 8 },
		"kind/images/":              func(h *tar.Header) bool { return h.Mode == 0o700 && h.Typeflag == tar.TypeDir },
		"usr/bin/":                  func(h *tar.Header) bool { return h.Mode == 0o755 && h.Uid == 0 },
		"etc/kubernetes/admin.conf": func(h *tar.Header) bool { return h.Mode == 0o600 && h.Uid == 10 && h.Gid == 20 },
		"etc/systemd/system/multi-user.target.wants/kubelet.service": func(h *tar.Header) bool {
			return h.Typeflag == tar.TypeSymlink && h.Linkname == "/etc/systemd/system/kubelet.service"
		},
	} {
		if h := headers[name]; h == nil || !check(h) {
			t.Errorf("%s: unexpected header %+v", name, h)
		}
	}
	// Order of the input does not matter.
	reversed := make([]Entry, len(entries))
	for i, e := range entries {
		reversed[len(entries)-1-i] = e
	}
	l2, err := LayerFromEntries(ctx, reversed, WithLayerDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := l.Digest()
	d2, _ := l2.Digest()
	if d1 != d2 {
		t.Errorf("same entries in another order: %s != %s", d1, d2)
	}
	if p, ok := LayerFile(l2); !ok || !strings.HasSuffix(p, ".tar.gz") {
		t.Errorf("LayerFile = %q, %v", p, ok)
	}
	if _, ok := LayerFile(l); ok {
		t.Error("an in-memory layer has a file")
	}

	for name, bad := range map[string][]Entry{
		"duplicate":      {{Path: "/a", Data: nil}, {Path: "a/", Data: nil}},
		"empty path":     {{Path: "/"}},
		"missing source": {{Path: "/a", Source: filepath.Join(t.TempDir(), "nope")}},
		"device":         {{Path: "/dev/null", Mode: fs.ModeDevice}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := LayerFromEntries(ctx, bad, InMemory()); err == nil {
				t.Error("accepted")
			}
		})
	}
}
