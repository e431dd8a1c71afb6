// Package containerd is the kinc backend for a containerd daemon, through
// its Go client. containerd runs containers but has no networks, published
// ports, volumes or name resolution, so this package adds them: networks are
// CNI configs run with go-cni (bridge, host-local, portmap, firewall), /var
// is a host directory, and names resolve through a kinc-managed /etc/hosts.
// What containerd does not keep is kept in a state directory (see state.go).
package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/namespaces"

	"github.com/kinc-dev/kinc/runtime"
)

const (
	// DefaultAddress is containerd's socket when CONTAINERD_ADDRESS is unset.
	DefaultAddress = "/run/containerd/containerd.sock"
	// DefaultNamespace keeps kinc's containers and images apart from others'.
	DefaultNamespace   = "kinc"
	defaultSnapshotter = "overlayfs"
	defaultCNIBinDir   = "/usr/lib/cni:/opt/cni/bin"
	connectTimeout     = 3 * time.Second
)

// Runtime is a runtime.Runtime backed by containerd.
type Runtime struct {
	client      *containerd.Client
	address     string
	namespace   string
	snapshotter string
	cniBinDirs  []string
	state       store
	runDir      string
}

var _ runtime.Runtime = (*Runtime)(nil)

type options struct {
	address     string
	namespace   string
	snapshotter string
	stateDir    string
	cniBinDirs  []string
}

// Option configures New.
type Option func(*options) error

// WithAddress sets the daemon's socket.
func WithAddress(address string) Option {
	return func(o *options) error {
		o.address = address
		return nil
	}
}

// WithNamespace sets the containerd namespace kinc works in.
func WithNamespace(ns string) Option {
	return func(o *options) error {
		if err := identifiers.Validate(ns); err != nil {
			return fmt.Errorf("validating namespace %q: %w", ns, runtime.ErrInvalid)
		}
		o.namespace = ns
		return nil
	}
}

// WithSnapshotter sets the snapshotter images are unpacked for.
func WithSnapshotter(name string) Option {
	return func(o *options) error {
		o.snapshotter = name
		return nil
	}
}

// WithStateDir sets where kinc keeps networks and per-node files; the
// namespace is appended to it.
func WithStateDir(dir string) Option {
	return func(o *options) error {
		o.stateDir = dir
		return nil
	}
}

// WithCNIBinDirs sets where the CNI plugins are looked for.
func WithCNIBinDirs(dirs ...string) Option {
	return func(o *options) error {
		o.cniBinDirs = dirs
		return nil
	}
}

func init() {
	runtime.Register(runtime.Backend{
		Name:      "containerd",
		Open:      runtime.OpenWith(func(ctx context.Context) (*Runtime, error) { return New(ctx) }),
		Sockets:   func() []string { return []string{address("")} },
		StartHint: "sudo containerd (or: sudo systemctl start containerd)",
	})
}

// address is the socket to use: the given one, else CONTAINERD_ADDRESS,
// else the default.
func address(given string) string {
	if given != "" {
		return given
	}
	if env := os.Getenv("CONTAINERD_ADDRESS"); env != "" {
		return env
	}
	return DefaultAddress
}

// New connects to containerd. It fails with runtime.ErrUnavailable when the
// daemon does not answer.
func New(ctx context.Context, opts ...Option) (*Runtime, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	o.address = address(o.address)
	if o.namespace == "" {
		o.namespace = DefaultNamespace
	}
	if o.snapshotter == "" {
		o.snapshotter = defaultSnapshotter
	}
	if o.stateDir == "" {
		o.stateDir = defaultStateDir()
	}
	if len(o.cniBinDirs) == 0 {
		o.cniBinDirs = filepath.SplitList(defaultCNIBinDir)
	}
	if _, err := os.Stat(o.address); err != nil {
		return nil, fmt.Errorf("connecting to containerd at %q: %w: %w", o.address, runtime.ErrUnavailable, err)
	}
	client, err := containerd.New(o.address,
		containerd.WithDefaultNamespace(o.namespace),
		containerd.WithTimeout(connectTimeout))
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %q: %w: %w", o.address, runtime.ErrUnavailable, err)
	}
	r := &Runtime{
		client:      client,
		address:     o.address,
		namespace:   o.namespace,
		snapshotter: o.snapshotter,
		cniBinDirs:  o.cniBinDirs,
		state:       store{dir: filepath.Join(o.stateDir, o.namespace)},
		runDir:      defaultRunDir,
	}
	if _, err := client.Version(r.ctx(ctx)); err != nil {
		client.Close()
		return nil, fmt.Errorf("connecting to containerd at %q: %w: %w", o.address, runtime.ErrUnavailable, err)
	}
	return r, nil
}

// defaultStateDir is /var/lib/kinc/containerd for root and the XDG data
// directory for everyone else.
func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/kinc/containerd"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "kinc", "containerd")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "kinc", "containerd")
}

// ctx puts the namespace on every call, whatever the caller passed.
func (r *Runtime) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.namespace)
}

// Close releases the connection to the daemon.
func (r *Runtime) Close() error {
	return r.client.Close()
}

// mapErr turns containerd's error classes into runtime's sentinels, keeping
// the original in the chain.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, runtime.ErrNotFound), errors.Is(err, runtime.ErrAlreadyExists),
		errors.Is(err, runtime.ErrUnavailable), errors.Is(err, runtime.ErrInvalid),
		errors.Is(err, runtime.ErrNotSupported):
		return err
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%w: %w", runtime.ErrNotFound, err)
	case errdefs.IsAlreadyExists(err):
		return fmt.Errorf("%w: %w", runtime.ErrAlreadyExists, err)
	case errdefs.IsUnavailable(err):
		return fmt.Errorf("%w: %w", runtime.ErrUnavailable, err)
	case errdefs.IsInvalidArgument(err):
		return fmt.Errorf("%w: %w", runtime.ErrInvalid, err)
	case errdefs.IsNotImplemented(err):
		return fmt.Errorf("%w: %w", runtime.ErrNotSupported, err)
	}
	return err
}
