package containerd

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/kinc-dev/kinc/runtime"
)

// containerd has no copy API. Files are reached through the task's
// /proc/<pid>/root, which sees the node's own mounts (/var, tmpfs), so a
// node needs no tar of its own; every path is resolved inside that root so
// that a symlink in the node cannot point the copy at the host.

// taskRoot is the node's root as the host sees it.
func (r *Runtime) taskRoot(ctx context.Context, name string) (string, error) {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, name)
	if err != nil {
		return "", mapErr(err)
	}
	t, err := c.Task(ctx, nil)
	if err != nil {
		if isNotFound(err) {
			return "", fmt.Errorf("node is not running: %w", runtime.ErrInvalid)
		}
		return "", mapErr(err)
	}
	root := fmt.Sprintf("/proc/%d/root", t.Pid())
	if _, err := os.Stat(root); err != nil {
		return "", fmt.Errorf("reaching the node's files: %w", err)
	}
	return root, nil
}

// CopyTo extracts a tar stream into dir inside the node, creating dir if
// needed. Owners and modes come from the stream.
func (r *Runtime) CopyTo(ctx context.Context, name, dir string, tr io.Reader) error {
	root, err := r.taskRoot(ctx, name)
	if err != nil {
		return fmt.Errorf("copying into %q in node %q: %w", dir, name, err)
	}
	if err := extractTar(root, dir, tr); err != nil {
		return fmt.Errorf("copying into %q in node %q: %w", dir, name, err)
	}
	return nil
}

// CopyFrom returns path inside the node as a tar stream whose top entry is
// path's base name.
func (r *Runtime) CopyFrom(ctx context.Context, name, p string) (io.ReadCloser, error) {
	root, err := r.taskRoot(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("copying %q from node %q: %w", p, name, err)
	}
	src, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return nil, fmt.Errorf("copying %q from node %q: %w", p, name, err)
	}
	if _, err := os.Lstat(src); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = runtime.ErrNotFound
		}
		return nil, fmt.Errorf("copying %q from node %q: %w", p, name, err)
	}
	pr, pw := io.Pipe()
	go func() {
		err := writeTar(pw, src, path.Base(path.Clean("/"+p)))
		if err != nil {
			err = fmt.Errorf("copying %q from node %q: %w", p, name, err)
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// writeTar writes the tree at src to w, named base at its top.
func writeTar(w io.Writer, src, base string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = path.Join(base, filepath.ToSlash(rel))
		if fi.IsDir() {
			h.Name += "/"
		}
		// Names would be looked up in the host's passwd, not the node's.
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// extractTar unpacks r under dir inside root. Parents are resolved inside
// root; the last element of each entry is never followed.
func extractTar(root, dir string, r io.Reader) error {
	tr := tar.NewReader(r)
	base := path.Clean("/" + dir)
	top, err := securejoin.SecureJoin(root, base)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(top, 0o755); err != nil {
		return err
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar stream: %w", err)
		}
		rel := path.Clean("/" + h.Name)
		if rel == "/" {
			continue
		}
		full := path.Join(base, rel)
		parent, err := securejoin.SecureJoin(root, path.Dir(full))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		target := filepath.Join(parent, path.Base(full))
		if err := extractEntry(root, base, target, h, tr); err != nil {
			return fmt.Errorf("extracting %q: %w", h.Name, err)
		}
	}
}

func extractEntry(root, base, target string, h *tar.Header, r io.Reader) error {
	mode := uint32(h.Mode & 0o7777)
	if h.Typeflag != tar.TypeDir {
		if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
			if err := os.Remove(target); err != nil {
				return err
			}
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if fi, err := os.Lstat(target); err != nil || !fi.IsDir() {
			return fmt.Errorf("%q exists and is not a directory", h.Name)
		}
	case tar.TypeReg:
		f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	case tar.TypeSymlink:
		return lchownTimes(os.Symlink(h.Linkname, target), target, h)
	case tar.TypeLink:
		src, err := securejoin.SecureJoin(root, path.Join(base, path.Clean("/"+h.Linkname)))
		if err != nil {
			return err
		}
		return os.Link(src, target)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		dev := unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
		if err := unix.Mknod(target, kind|mode, int(dev)); err != nil {
			return err
		}
	default:
		return nil // pax globals and the like carry no file
	}
	if err := os.Lchown(target, h.Uid, h.Gid); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	// Chmod after chown: chown clears setuid bits.
	if err := unix.Fchmodat(unix.AT_FDCWD, target, mode, 0); err != nil {
		return err
	}
	return setTimes(target, h)
}

func lchownTimes(err error, target string, h *tar.Header) error {
	if err != nil {
		return err
	}
	if err := os.Lchown(target, h.Uid, h.Gid); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return setTimes(target, h)
}

func setTimes(target string, h *tar.Header) error {
	if h.ModTime.IsZero() {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(h.AccessTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	if h.AccessTime.IsZero() {
		ts[0] = ts[1]
	}
	err := unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil && strings.Contains(err.Error(), "not supported") {
		return nil
	}
	return err
}
