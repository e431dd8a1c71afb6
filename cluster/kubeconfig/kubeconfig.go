package kubeconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Option tunes Merge and Remove.
type Option func(*options) error

type options struct {
	lockTimeout time.Duration
}

// WithLockTimeout bounds the wait for another writer's lock (default 10s;
// the context's deadline, when sooner, wins).
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("lock timeout %s: must be positive", d)
		}
		o.lockTimeout = d
		return nil
	}
}

// Merge writes e into the kubeconfig at path (created, with its directory,
// if missing), replacing an earlier entry of the same name, and makes it the
// current context.
func Merge(ctx context.Context, path string, e *Entry, opts ...Option) error {
	if err := e.validate(); err != nil {
		return err
	}
	return edit(ctx, path, opts, func(d *document) (bool, error) {
		return true, d.merge(e)
	})
}

// Remove deletes what Merge wrote for cluster from the kubeconfig at path and
// restores current-context (see the package doc). A missing file or entry is
// not an error.
func Remove(ctx context.Context, path, cluster string, opts ...Option) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	name := ContextName(cluster)
	return edit(ctx, path, opts, func(d *document) (bool, error) {
		return d.remove(name), nil
	})
}

// edit runs change on the parsed file under the lock and writes the result
// atomically if change says it changed something.
func edit(ctx context.Context, path string, opts []Option, change func(*document) (bool, error)) error {
	o := options{lockTimeout: 10 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating kubeconfig directory: %w", err)
	}
	unlock, err := lock(ctx, path, o.lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()

	// Write through a symlink (dotfile managers) rather than replace it.
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	}
	mode := fs.FileMode(0o600)
	data, err := os.ReadFile(target)
	switch {
	case err == nil:
		if fi, err := os.Stat(target); err == nil {
			mode &= fi.Mode().Perm()
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	d, err := parse(path, data)
	if err != nil {
		return err
	}
	changed, err := change(d)
	if err != nil || !changed {
		return err
	}
	out, err := d.encode()
	if err != nil {
		return err
	}
	return writeAtomic(target, out, mode)
}

// lock takes path+".lock" with O_EXCL, the lock client-go (and so kubectl)
// takes around its own kubeconfig writes, so kinc and kubectl never write
// the file at once. An flock would be released by a crash, but kubectl
// ignores it; the price is that a crash leaves the file behind, and only the
// user can tell it is stale, so the error names it.
func lock(ctx context.Context, path string, timeout time.Duration) (func(), error) {
	name := path + ".lock"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wait := 5 * time.Millisecond
	for {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(name) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("locking kubeconfig %q: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("locking kubeconfig %q: %q is held by another kinc or kubectl; if none is running, delete it: %w", path, name, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 25*time.Millisecond)
	}
}

// writeAtomic replaces path with data through a temporary file in the same
// directory, so a reader sees the old file or the new one, never a part.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".kinc-*")
	if err != nil {
		return fmt.Errorf("writing kubeconfig %q: %w", path, err)
	}
	tmp := f.Name()
	err = func() error {
		defer f.Close()
		if _, err := f.Write(data); err != nil {
			return err
		}
		if err := f.Chmod(mode); err != nil {
			return err
		}
		return f.Sync()
	}()
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing kubeconfig %q: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable; best effort
		d.Sync()
		d.Close()
	}
	return nil
}
