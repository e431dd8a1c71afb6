package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/kinc-dev/kinc/runtime"
)

// node is a container kinc talks to: a name in a runtime. Actions only run
// commands and copy files through it, so they never know the backend.
type node struct {
	rt   runtime.Runtime
	name string
}

// output runs a command and returns its stdout; on failure the error
// carries the command's output (runtime.ExitError).
func (n node) output(ctx context.Context, cmd ...string) (string, error) {
	var out bytes.Buffer
	err := n.rt.Exec(ctx, n.name, runtime.ExecSpec{Cmd: cmd, Stdout: &out})
	return out.String(), err
}

// runLogged runs a command and appends what it printed to KubeadmLogPath,
// whether it succeeded or not.
func (n node) runLogged(ctx context.Context, cmd ...string) error {
	var out bytes.Buffer
	err := n.rt.Exec(ctx, n.name, runtime.ExecSpec{Cmd: cmd, Stdout: &out, Stderr: &out})
	entry := fmt.Sprintf("$ %s\n%s", strings.Join(cmd, " "), out.String())
	if werr := n.runInput(ctx, []byte(entry), "sh", "-c", "cat >> "+KubeadmLogPath); werr != nil && err == nil {
		return fmt.Errorf("keeping kubeadm's output in %s: %w", n.name, werr)
	}
	return err
}

// run runs a command, streaming its output to w when w is not nil.
func (n node) run(ctx context.Context, w io.Writer, cmd ...string) error {
	return n.rt.Exec(ctx, n.name, runtime.ExecSpec{Cmd: cmd, Stdout: w, Stderr: w})
}

// runInput runs a command with stdin.
func (n node) runInput(ctx context.Context, stdin []byte, cmd ...string) error {
	return n.rt.Exec(ctx, n.name, runtime.ExecSpec{Cmd: cmd, Stdin: bytes.NewReader(stdin)})
}

// writeFile puts content at the absolute path p.
func (n node) writeFile(ctx context.Context, p string, content []byte, mode int64) error {
	dir, base := path.Split(p)
	if err := n.rt.CopyTo(ctx, n.name, dir, runtime.TarFiles(runtime.File{Name: base, Content: content, Mode: mode})); err != nil {
		return fmt.Errorf("writing %s in %s: %w", p, n.name, err)
	}
	return nil
}

// readFile returns the content of the absolute path p.
func (n node) readFile(ctx context.Context, p string) ([]byte, error) {
	rc, err := n.rt.CopyFrom(ctx, n.name, p)
	if err != nil {
		return nil, fmt.Errorf("reading %s in %s: %w", p, n.name, err)
	}
	defer rc.Close()
	data, err := runtime.ReadTarFile(rc, "")
	if err != nil {
		return nil, fmt.Errorf("reading %s in %s: %w", p, n.name, err)
	}
	return data, nil
}

// poll calls check every interval until it reports done, returns an error
// other than errRetry, or timeout passes; the last error is returned.
func poll(ctx context.Context, timeout, interval time.Duration, check func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		done, err := check(ctx)
		if done {
			return nil
		}
		// An error caused by the deadline itself says nothing new.
		if err != nil && ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil && !errors.Is(last, context.DeadlineExceeded) {
				return fmt.Errorf("gave up after %s: %w", timeout, last)
			}
			return fmt.Errorf("gave up after %s: %w", timeout, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// waitForSystemd waits until systemd in the node has booted (running, or
// degraded when some unit failed: kubelet is started by kubeadm later).
func (n node) waitForSystemd(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		// --wait returns once boot is done: one exec instead of one per
		// poll, which cost CPU while several nodes boot. It fails at once
		// while systemd cannot yet answer, hence the poll around it.
		out, err := n.output(ctx, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			return true, nil
		}
		if err == nil {
			err = fmt.Errorf("systemd is %q", state)
		}
		return false, fmt.Errorf("waiting for systemd in %s: %w", n.name, err)
	})
}
