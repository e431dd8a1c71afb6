package runtime

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels every backend maps its own errors to, at its boundary, so that
// callers can ask errors.Is(err, runtime.ErrNotFound) whatever the backend.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrUnavailable   = errors.New("runtime unavailable")
	ErrNotSupported  = errors.New("not supported")
	ErrInvalid       = errors.New("invalid argument")
)

// ExitError is a command inside a container that exited non-zero.
type ExitError struct {
	Container string
	Cmd       []string
	Code      int
	// Output is what the command printed (stdout then stderr), kept so that
	// an error message can show its last lines.
	Output string
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("command %q in %s exited with code %d", strings.Join(e.Cmd, " "), e.Container, e.Code)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ":\n" + tail(out, 20)
	}
	return msg
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
