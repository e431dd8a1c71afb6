package runtime

import (
	"io"
	"sync"
)

// outputTailSize bounds what an ExitError keeps of a command's output.
const outputTailSize = 64 << 10

// ExecOutput captures the tail of a command's stdout and stderr, besides
// whatever writers the caller gave, so that a failing command's error can
// show what it printed. Backends use it alike:
//
//	out := runtime.NewExecOutput(spec)
//	... run with out.Stdout(), out.Stderr() ...
//	return out.Result(name, spec.Cmd, code)
type ExecOutput struct {
	stdout, stderr tailBuffer
	spec           ExecSpec
}

// NewExecOutput prepares the capture for spec.
func NewExecOutput(spec ExecSpec) *ExecOutput {
	return &ExecOutput{spec: spec}
}

// Stdout is the writer the backend sends the command's stdout to.
func (o *ExecOutput) Stdout() io.Writer { return tee(o.spec.Stdout, &o.stdout) }

// Stderr is the writer the backend sends the command's stderr to.
func (o *ExecOutput) Stderr() io.Writer { return tee(o.spec.Stderr, &o.stderr) }

// Result is nil for exit code 0 and an *ExitError otherwise.
func (o *ExecOutput) Result(container string, cmd []string, code int) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Container: container, Cmd: cmd, Code: code, Output: o.stdout.String() + o.stderr.String()}
}

func tee(w io.Writer, buf *tailBuffer) io.Writer {
	if w == nil {
		return buf
	}
	return io.MultiWriter(w, buf)
}

// tailBuffer keeps the last outputTailSize bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - outputTailSize; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
