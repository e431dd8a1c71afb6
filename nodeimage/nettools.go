package nodeimage

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// netToolPatterns are what kube-proxy and flanneld run from the base:
// iptables in both backends with its extensions, nft, conntrack, ipset
// and modprobe, and the files they read. Everything else these programs
// load is found by following symlinks and ELF dependencies.
var netToolPatterns = []string{
	"usr/sbin/iptables*", "usr/sbin/ip6tables*", "usr/sbin/xtables-*",
	"usr/sbin/ebtables*", "usr/sbin/arptables*",
	"usr/sbin/nft", "usr/sbin/conntrack", "usr/sbin/ipset", "usr/sbin/modprobe",
	"usr/lib/*/xtables/*",
	"etc/alternatives/iptables*", "etc/alternatives/ip6tables*",
	"etc/alternatives/ebtables*", "etc/alternatives/arptables*",
	"etc/ethertypes", "etc/protocols", "etc/services", "etc/nsswitch.conf",
	"etc/passwd", "etc/group", "bin", "sbin", "lib", "lib64",
}

// netToolsRequired must be found, or the base is not one these images can
// be made from.
var netToolsRequired = []string{"usr/sbin/iptables", "usr/sbin/ip6tables", "usr/sbin/nft"}

// baseTree is the base image's flattened file tree: every entry's header,
// the libraries each ELF file needs (its interpreter first) and where it
// says to look for them (RUNPATH or RPATH, $ORIGIN expanded).
type baseTree struct {
	entries  map[string]*tar.Header
	needs    map[string][]string
	runpaths map[string][]string
}

// eachFile calls f with every entry of img's flattened file tree, its
// cleaned path and a reader of its content.
func eachFile(img v1.Image, f func(p string, h *tar.Header, content io.Reader) error) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the base image's files: %w", err)
		}
		if err := f(cleanPath(h.Name), h, tr); err != nil {
			return err
		}
	}
}

// readBaseTree reads the flattened base once.
func readBaseTree(img v1.Image) (*baseTree, error) {
	t := &baseTree{entries: map[string]*tar.Header{}, needs: map[string][]string{}, runpaths: map[string][]string{}}
	err := eachFile(img, func(p string, h *tar.Header, content io.Reader) error {
		t.entries[p] = h
		if h.Typeflag != tar.TypeReg || h.Size < 4 {
			return nil
		}
		data, err := io.ReadAll(content)
		if err != nil {
			return fmt.Errorf("reading %s in the base image: %w", p, err)
		}
		if needs, runpaths, ok := elfNeeds(data); ok {
			t.needs[p] = needs
			for _, r := range runpaths {
				r = strings.ReplaceAll(strings.ReplaceAll(r, "${ORIGIN}", "$ORIGIN"), "$ORIGIN", "/"+path.Dir(p))
				t.runpaths[p] = append(t.runpaths[p], cleanPath(r))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// elfNeeds returns an ELF file's interpreter and the libraries it names,
// and the directories it names to find them in.
func elfNeeds(data []byte) (needs, runpaths []string, ok bool) {
	if !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
		return nil, nil, false
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, nil, false
	}
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		values, _ := f.DynString(tag)
		for _, v := range values {
			runpaths = append(runpaths, strings.Split(v, ":")...)
		}
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err == nil {
				needs = append(needs, strings.TrimRight(string(b), "\x00"))
			}
		}
	}
	libs, _ := f.ImportedLibraries()
	return append(needs, libs...), runpaths, true
}

func cleanPath(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// resolve follows symlinks in every component of p, adding each symlink
// it passes and the final entry to keep. It returns the resolved path.
func (t *baseTree) resolve(p string, keep map[string]bool) (string, bool) {
	parts := strings.Split(cleanPath(p), "/")
	cur := ""
	for hops := 0; len(parts) > 0; {
		next := path.Join(cur, parts[0])
		parts = parts[1:]
		h, ok := t.entries[next]
		if !ok {
			return "", false
		}
		if h.Typeflag != tar.TypeSymlink {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", false
		}
		keep[next] = true
		target := h.Linkname
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(next), target)
		}
		parts = append(strings.Split(cleanPath(target), "/"), parts...)
		cur = ""
	}
	keep[cur] = true
	return cur, true
}

// library finds a library an ELF file needs as the loader would: an
// absolute path as it is, a name in the first of dirs that has it.
func (t *baseTree) library(lib string, dirs []string) (string, bool) {
	candidates := []string{lib}
	if !path.IsAbs(lib) {
		candidates = candidates[:0]
		for _, d := range dirs {
			candidates = append(candidates, path.Join(d, lib))
		}
	}
	for _, c := range candidates {
		if _, ok := t.resolve(c, map[string]bool{}); ok {
			return c, true
		}
	}
	return "", false
}

// netTools returns the paths to keep: the patterns' matches and all they
// need, with the directories above them.
func (t *baseTree) netTools() ([]string, error) {
	// The loader's search path, for bases with and without merged /usr.
	var libDirs []string
	for p, h := range t.entries {
		if h.Typeflag == tar.TypeDir && (path.Dir(p) == "lib" || path.Dir(p) == "usr/lib") && strings.HasSuffix(p, "-linux-gnu") {
			libDirs = append(libDirs, p)
		}
	}
	sort.Strings(libDirs)
	libDirs = append(libDirs, "lib64", "usr/lib64", "lib", "usr/lib")

	keep := map[string]bool{}
	var queue []string
	for p := range t.entries {
		for _, pat := range netToolPatterns {
			if ok, _ := path.Match(pat, p); ok {
				queue = append(queue, p)
			}
		}
	}
	for _, req := range netToolsRequired {
		if _, ok := t.resolve(req, map[string]bool{}); !ok {
			return nil, fmt.Errorf("the base image has no %s, which kube-proxy and flanneld run", req)
		}
	}
	seen := map[string]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		real, ok := t.resolve(p, keep)
		if !ok || seen[real] {
			continue
		}
		seen[real] = true
		for _, lib := range t.needs[real] {
			found, ok := t.library(lib, slices.Concat(t.runpaths[real], libDirs))
			if !ok {
				return nil, fmt.Errorf("the base image's /%s needs %s, which the base lacks", real, lib)
			}
			queue = append(queue, found)
		}
	}
	for p := range keep {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if h, ok := t.entries[d]; ok && h.Typeflag == tar.TypeDir {
				keep[d] = true
			}
		}
	}
	paths := make([]string, 0, len(keep))
	for p := range keep {
		if p != "" {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// copyOut copies the kept paths out of the base image as layer entries,
// in a second pass over its files. A hard link becomes a copy of the file
// it links to, which comes before it in the stream.
func (t *baseTree) copyOut(img v1.Image, keep []string) ([]Entry, error) {
	want, linked := map[string]bool{}, map[string]bool{}
	for _, p := range keep {
		want[p] = true
		if h := t.entries[p]; h.Typeflag == tar.TypeLink {
			linked[cleanPath(h.Linkname)] = true
		}
	}
	data := map[string][]byte{}
	var entries []Entry
	err := eachFile(img, func(p string, h *tar.Header, content io.Reader) error {
		if !want[p] && !linked[p] {
			return nil
		}
		e := Entry{Path: "/" + p, Mode: fs.FileMode(h.Mode).Perm(), UID: h.Uid, GID: h.Gid}
		switch h.Typeflag {
		case tar.TypeDir:
			e.Mode |= fs.ModeDir
		case tar.TypeSymlink:
			e.Mode |= fs.ModeSymlink
			e.Linkname = h.Linkname
		case tar.TypeReg:
			var err error
			if e.Data, err = io.ReadAll(content); err != nil {
				return err
			}
			data[p] = e.Data
		case tar.TypeLink:
			e.Data = data[cleanPath(h.Linkname)]
		default:
			return nil
		}
		if want[p] {
			entries = append(entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// netToolsLayer is the slice of the base that kube-proxy and flanneld
// need. Their images were the whole base (255 MB unpacked) and every node
// unpacks them; this slice is a few MB.
func (b *nodeBuild) netToolsLayer(ctx context.Context) (v1.Layer, error) {
	if b.netTools != nil {
		return b.netTools, nil
	}
	tree, err := readBaseTree(b.base)
	if err != nil {
		return nil, err
	}
	keep, err := tree.netTools()
	if err != nil {
		return nil, err
	}
	entries, err := tree.copyOut(b.base, keep)
	if err != nil {
		return nil, err
	}
	if b.netTools, err = LayerFromEntries(ctx, entries, WithLayerDir(b.dir)); err != nil {
		return nil, err
	}
	return b.netTools, nil
}
