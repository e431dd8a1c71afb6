package runtime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Backend is how a backend package makes itself known to Detect without
// runtime importing it: each calls Register from its init, and the program
// blank-imports the backends it wants.
type Backend struct {
	// Name is what users pass to --runtime: "podman", "docker", "containerd".
	Name string
	// Open connects to the first of the backend's sockets that answers; an
	// error wrapping ErrUnavailable when none does.
	Open func(ctx context.Context) (Runtime, error)
	// Sockets lists, in order, the addresses Open tries, for messages.
	Sockets func() []string
	// StartHint tells a user how to start the daemon.
	StartHint string
}

// OpenWith adapts a backend's constructor to Backend.Open, keeping a nil
// *T out of the returned interface when the constructor fails.
func OpenWith[T Runtime](newRuntime func(context.Context) (T, error)) func(context.Context) (Runtime, error) {
	return func(ctx context.Context) (Runtime, error) {
		r, err := newRuntime(ctx)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
}

// detectOrder is the order auto-detection tries backends in; backends not
// listed come after, by name.
var detectOrder = []string{"podman", "docker", "containerd"}

var (
	registryMu sync.Mutex
	registry   = map[string]Backend{}
)

// Register adds a backend; a second registration of a name replaces the first.
func Register(b Backend) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[b.Name] = b
}

// Backends returns the registered backends in detection order.
func Backends() []Backend {
	registryMu.Lock()
	defer registryMu.Unlock()
	rank := map[string]int{}
	for i, n := range detectOrder {
		rank[n] = i + 1
	}
	out := make([]Backend, 0, len(registry))
	for _, b := range registry {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank[out[i].Name], rank[out[j].Name]
		if ri == 0 {
			ri = len(detectOrder) + 1
		}
		if rj == 0 {
			rj = len(detectOrder) + 1
		}
		if ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Option tunes Detect and Probe.
type Option func(*options) error

type options struct {
	timeout time.Duration
}

// WithTimeout bounds how long each backend may take to answer (default 5s).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("timeout %s: %w", d, ErrInvalid)
		}
		o.timeout = d
		return nil
	}
}

func newOptions(opts []Option) (options, error) {
	o := options{timeout: 5 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Detect returns the runtime called name, or with name "" the first
// registered backend that answers, in the order podman, docker, containerd.
// When none answers, the error lists every socket tried and how to start
// each daemon.
func Detect(ctx context.Context, name string, opts ...Option) (Runtime, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	backends := Backends()
	if name != "" {
		for _, b := range backends {
			if b.Name == name {
				rt, err := open(ctx, b, o.timeout)
				if err != nil {
					return nil, fmt.Errorf("%w\n%s", err, hint(b))
				}
				return rt, nil
			}
		}
		names := make([]string, 0, len(backends))
		for _, b := range backends {
			names = append(names, b.Name)
		}
		return nil, fmt.Errorf("runtime %q: %w (known: %s)", name, ErrNotSupported, strings.Join(names, ", "))
	}
	if len(backends) == 0 {
		return nil, fmt.Errorf("detecting a container runtime: none compiled in: %w", ErrUnavailable)
	}
	var msg strings.Builder
	for _, b := range backends {
		rt, err := open(ctx, b, o.timeout)
		if err == nil {
			return rt, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fmt.Fprintf(&msg, "\n  %s: %v\n%s", b.Name, err, hint(b))
	}
	return nil, fmt.Errorf("no container runtime answers: %w%s", ErrUnavailable, msg.String())
}

func hint(b Backend) string {
	var s strings.Builder
	if b.Sockets != nil {
		fmt.Fprintf(&s, "    tried: %s\n", strings.Join(b.Sockets(), ", "))
	}
	if b.StartHint != "" {
		fmt.Fprintf(&s, "    to start it: %s\n", b.StartHint)
	}
	return s.String()
}

func open(ctx context.Context, b Backend, timeout time.Duration) (Runtime, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rt, err := b.Open(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%s did not answer within %s: %w", b.Name, timeout, ErrUnavailable)
		}
		return nil, err
	}
	return rt, nil
}

// ProbeResult is one backend's reachability, for `kinc info`.
type ProbeResult struct {
	Name    string
	Sockets []string
	// Info is set when the backend answered.
	Info *Info
	Err  error
}

// Probe asks every registered backend, concurrently, whether it answers and
// what it reports, in detection order.
func Probe(ctx context.Context, opts ...Option) ([]ProbeResult, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	backends := Backends()
	results := make([]ProbeResult, len(backends))
	var wg sync.WaitGroup
	for i, b := range backends {
		results[i].Name = b.Name
		if b.Sockets != nil {
			results[i].Sockets = b.Sockets()
		}
		wg.Add(1)
		go func(r *ProbeResult, b Backend) {
			defer wg.Done()
			rt, err := open(ctx, b, o.timeout)
			if err != nil {
				r.Err = err
				return
			}
			defer rt.Close()
			ictx, cancel := context.WithTimeout(ctx, o.timeout)
			defer cancel()
			info, err := rt.Info(ictx)
			if err != nil {
				r.Err = err
				return
			}
			r.Info = &info
		}(&results[i], b)
	}
	wg.Wait()
	return results, nil
}
