package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// status prints one line per step, as kind does: "✓ Step (3s)" or
// "✗ Step". It stays silent when stderr is not a terminal (CI logs, pipes)
// unless -v asks for detail; errors are reported by Run either way.
type status struct {
	mu      sync.Mutex
	w       io.Writer
	enabled bool
	started map[string]time.Time
	now     func() time.Time
}

func newStatus(e *env) *status {
	enabled := !e.quiet && (isTerminal(e.stderr) || e.verbosity > 0)
	return &status{w: e.stderr, enabled: enabled, started: map[string]time.Time{}, now: time.Now}
}

// Start marks the beginning of a step.
func (s *status) Start(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started[step] = s.now()
}

// End prints the step with a tick, or a cross when it failed.
func (s *status) End(step string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	took := s.now().Sub(s.started[step]).Round(time.Second)
	delete(s.started, step)
	if !s.enabled {
		return
	}
	mark := "✓"
	if err != nil {
		mark = "✗"
	}
	fmt.Fprintf(s.w, " %s %s (%s)\n", mark, step, took)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
