package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/oci"

	"github.com/kinc-dev/kinc/runtime"
)

// Exec runs a command in the running node with the node's own process
// settings (capabilities, env), plus the command's env and user.
func (r *Runtime) Exec(ctx context.Context, name string, cmd runtime.ExecSpec) error {
	ctx = r.ctx(ctx)
	if len(cmd.Cmd) == 0 {
		return fmt.Errorf("exec in node %q: no command: %w", name, runtime.ErrInvalid)
	}
	c, err := r.client.LoadContainer(ctx, name)
	if err != nil {
		return fmt.Errorf("exec in node %q: %w", name, mapErr(err))
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("exec in node %q: node is not running: %w", name, runtime.ErrInvalid)
		}
		return fmt.Errorf("exec in node %q: %w", name, mapErr(err))
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return fmt.Errorf("exec in node %q: %w", name, mapErr(err))
	}
	opts := []oci.SpecOpts{oci.WithEnv(runtime.EnvList(cmd.Env))}
	if cmd.User != "" {
		opts = append(opts, oci.WithUser(cmd.User))
	}
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("exec in node %q: %w", name, mapErr(err))
	}
	if err := oci.ApplyOpts(ctx, r.client, &info, spec, opts...); err != nil {
		return fmt.Errorf("exec in node %q: %w", name, err)
	}
	pspec := spec.Process
	pspec.Args = cmd.Cmd
	pspec.Terminal = false

	out := runtime.NewExecOutput(cmd)
	stdout, stderr := out.Stdout(), out.Stderr()
	var stdin *stdinCloser
	streams := cio.WithStreams(nil, stdout, stderr)
	if cmd.Stdin != nil {
		stdin = &stdinCloser{r: cmd.Stdin}
		streams = cio.WithStreams(stdin, stdout, stderr)
	}
	p, err := task.Exec(ctx, execID(), pspec, cio.NewCreator(streams))
	if err != nil {
		return fmt.Errorf("exec in node %q: %w", name, mapErr(err))
	}
	cleanup := context.WithoutCancel(ctx)
	deleted := false
	defer func() {
		if !deleted {
			_, _ = p.Delete(cleanup, containerd.WithProcessKill)
		}
	}()
	if stdin != nil {
		stdin.setCloser(func() { _ = p.CloseIO(cleanup, containerd.WithStdinCloser) })
	}
	exited, err := p.Wait(ctx)
	if err != nil {
		return fmt.Errorf("exec in node %q: %w", name, mapErr(err))
	}
	if err := p.Start(ctx); err != nil {
		return fmt.Errorf("exec %q in node %q: %w", cmd.Cmd[0], name, mapErr(err))
	}
	var status containerd.ExitStatus
	select {
	case status = <-exited:
	case <-ctx.Done():
		_ = p.Kill(cleanup, syscall.SIGKILL)
		return ctx.Err()
	}
	// The exit can come before the last output is copied from the shim's
	// pipes, and Delete cancels the copy: wait for it first (seen as an
	// empty reply now and then). Bounded, because a daemon the command
	// started may hold the pipes open.
	copied := make(chan struct{})
	go func() { p.IO().Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(ioDrainTimeout):
	case <-ctx.Done():
	}
	deleted = true
	if _, err := p.Delete(cleanup); err != nil && !isNotFound(err) {
		return fmt.Errorf("exec in node %q: %w", name, mapErr(err))
	}
	code, _, err := status.Result()
	if err != nil {
		return fmt.Errorf("exec in node %q: %w", name, mapErr(err))
	}
	return out.Result(name, cmd.Cmd, int(code))
}

// ioDrainTimeout bounds the wait for an exec's output after it exited.
const ioDrainTimeout = 5 * time.Second

func execID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "kinc-exec-" + hex.EncodeToString(b)
}

// stdinCloser closes the process's stdin once the caller's reader is
// drained; the shim cannot tell EOF on its own. EOF may come before the
// process exists, so the close is remembered until it does.
type stdinCloser struct {
	r      io.Reader
	mu     sync.Mutex
	closer func()
	eof    bool
}

func (s *stdinCloser) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.mu.Lock()
		s.eof = true
		closer := s.closer
		s.mu.Unlock()
		if closer != nil {
			closer()
		}
	}
	return n, err
}

func (s *stdinCloser) setCloser(f func()) {
	s.mu.Lock()
	s.closer = f
	eof := s.eof
	s.mu.Unlock()
	if eof {
		f()
	}
}

// Logs writes what the node's PID 1 printed, from the log file the shim
// writes.
func (r *Runtime) Logs(ctx context.Context, name string, w io.Writer) error {
	ctx = r.ctx(ctx)
	if _, err := r.client.LoadContainer(ctx, name); err != nil {
		return fmt.Errorf("reading logs of node %q: %w", name, mapErr(err))
	}
	f, err := os.Open(r.state.logFile(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading logs of node %q: %w", name, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("reading logs of node %q: %w", name, err)
	}
	return nil
}
