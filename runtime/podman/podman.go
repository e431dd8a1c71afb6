// Package podman is the kinc runtime backend for Podman, spoken to through
// its REST API socket with podman/v4's bindings (never the podman CLI).
package podman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containers/podman/v4/pkg/bindings"
	"github.com/containers/podman/v4/pkg/bindings/system"
	podmancopy "github.com/containers/podman/v4/pkg/copy"
	"github.com/containers/podman/v4/pkg/errorhandling"

	"github.com/kinc-dev/kinc/runtime"
)

// Name is the backend's name for --runtime.
const Name = "podman"

const rootfulSocket = "/run/podman/podman.sock"

func init() {
	runtime.Register(runtime.Backend{
		Name:      Name,
		Open:      runtime.OpenWith(func(ctx context.Context) (*Runtime, error) { return New(ctx) }),
		Sockets:   Sockets,
		StartHint: "systemctl --user start podman.socket (rootless), sudo systemctl start podman.socket, or podman system service --time=0 &",
	})
}

// Sockets lists the API sockets New tries, in order: CONTAINER_HOST when
// set, else the rootless user's socket, then the rootful one.
func Sockets() []string {
	if v := os.Getenv("CONTAINER_HOST"); v != "" {
		return []string{v}
	}
	var out []string
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		out = append(out, "unix://"+filepath.Join(dir, "podman", "podman.sock"))
	}
	return append(out, "unix://"+rootfulSocket)
}

// Option configures New.
type Option func(*options) error

type options struct {
	uris []string
}

// WithURI connects to this API address (unix:///path or tcp://host:port)
// instead of the default sockets.
func WithURI(uri string) Option {
	return func(o *options) error {
		if uri == "" {
			return fmt.Errorf("empty podman URI: %w", runtime.ErrInvalid)
		}
		o.uris = []string{uri}
		return nil
	}
}

// Runtime is a connection to one podman service.
type Runtime struct {
	uri string
	// conn carries the bindings' connection as a context value; calls merge
	// it with the caller's context (connCtx) so cancellation still works.
	conn context.Context
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to the first socket that answers.
func New(ctx context.Context, opts ...Option) (*Runtime, error) {
	o := options{}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if len(o.uris) == 0 {
		o.uris = Sockets()
	}
	var errs []string
	for _, uri := range o.uris {
		if path, ok := strings.CutPrefix(uri, "unix://"); ok {
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", uri, err))
				continue
			}
		}
		conn, err := connect(ctx, uri)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		return &Runtime{uri: uri, conn: conn}, nil
	}
	return nil, fmt.Errorf("connecting to podman (%s): %w", strings.Join(errs, "; "), runtime.ErrUnavailable)
}

// connect opens a bindings connection whose context outlives ctx: the
// bindings keep the context they were given, so it must not be one that
// is cancelled after New returns.
func connect(ctx context.Context, uri string) (context.Context, error) {
	type result struct {
		conn context.Context
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := bindings.NewConnection(context.Background(), uri)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("%s: %v", uri, r.err)
		}
		return r.conn, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", uri, ctx.Err())
	}
}

// ctx merges the caller's cancellation with the connection's values.
func (r *Runtime) ctx(ctx context.Context) context.Context {
	return connCtx{Context: ctx, values: r.conn}
}

type connCtx struct {
	context.Context
	values context.Context
}

func (c connCtx) Value(key any) any {
	if v := c.values.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}

// Close releases nothing: the bindings hold no open connection between calls.
func (r *Runtime) Close() error { return nil }

// Info reports podman's version and the host as podman sees it.
func (r *Runtime) Info(ctx context.Context) (runtime.Info, error) {
	info, err := system.Info(r.ctx(ctx), nil)
	if err != nil {
		return runtime.Info{}, r.mapErr(err, "getting podman info")
	}
	ri := runtime.Info{
		Name:         Name,
		Socket:       r.uri,
		Rootless:     info.Host.Security.Rootless,
		CgroupDriver: info.Host.CgroupManager,
	}
	if info.Version.Version != "" {
		ri.Version = info.Version.Version
	}
	if info.Host.CgroupsVersion == "v2" {
		ri.CgroupVersion = 2
		for _, c := range info.Host.CgroupControllers {
			switch c {
			case "memory":
				ri.MemoryLimit = true
			case "pids":
				ri.PidsLimit = true
			case "cpu":
				ri.CPUShares = true
			}
		}
	} else {
		ri.CgroupVersion = 1
		// cgroup v1 limits need root: rootless podman cannot set them.
		ri.MemoryLimit, ri.PidsLimit, ri.CPUShares = !ri.Rootless, !ri.Rootless, !ri.Rootless
	}
	return ri, nil
}

// mapErr maps an error of the bindings to runtime's sentinels, once, here.
func (r *Runtime) mapErr(err error, doing string) error {
	if err == nil {
		return nil
	}
	var sentinel error
	var em *errorhandling.ErrorModel
	var ce bindings.ConnectError
	switch {
	case errors.As(err, &em):
		msg := strings.ToLower(em.Because + " " + em.Message)
		switch {
		case em.ResponseCode == 404 || strings.Contains(msg, "no such"):
			sentinel = runtime.ErrNotFound
		case strings.Contains(msg, "already in use") || strings.Contains(msg, "already exists") || strings.Contains(msg, "already used"):
			sentinel = runtime.ErrAlreadyExists
		case em.ResponseCode == 400:
			sentinel = runtime.ErrInvalid
		}
	case errors.Is(err, podmancopy.ErrENOENT) || strings.HasPrefix(err.Error(), "404 "):
		// The archive endpoints report a missing container or path this way.
		sentinel = runtime.ErrNotFound
	case errors.As(err, &ce), isConnErr(err):
		return fmt.Errorf("%s: podman at %s: %v: %w", doing, r.uri, err, runtime.ErrUnavailable)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		return fmt.Errorf("%s: %v: %w", doing, err, sentinel)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

func isConnErr(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// stopTimeout is how long systemd gets to shut a node down before SIGKILL.
const stopTimeout = 30 * time.Second
