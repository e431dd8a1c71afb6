// Package docker is the kinc runtime backend for Docker, spoken to with the
// moby client (github.com/moby/moby/client).
package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/kinc-dev/kinc/runtime"
)

// Name is the backend's name for --runtime.
const Name = "docker"

func init() {
	runtime.Register(runtime.Backend{
		Name:      Name,
		Open:      runtime.OpenWith(func(ctx context.Context) (*Runtime, error) { return New(ctx) }),
		Sockets:   Sockets,
		StartHint: "sudo systemctl start docker (or dockerd &)",
	})
}

// Sockets lists the address New uses: DOCKER_HOST, else the default socket.
func Sockets() []string {
	if v := os.Getenv(client.EnvOverrideHost); v != "" {
		return []string{v}
	}
	return []string{client.DefaultDockerHost}
}

// stopTimeout is how long systemd gets to shut a node down before SIGKILL.
const stopTimeout = 30 * time.Second

// Option configures New.
type Option func(*options) error

type options struct {
	host string
}

// WithHost connects to this daemon address (unix:///path, tcp://...)
// instead of DOCKER_HOST or the default socket.
func WithHost(host string) Option {
	return func(o *options) error {
		if host == "" {
			return fmt.Errorf("empty docker host: %w", runtime.ErrInvalid)
		}
		o.host = host
		return nil
	}
}

// Runtime is a connection to one docker daemon.
type Runtime struct {
	host string
	c    *client.Client
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to the daemon and checks that it answers.
func New(ctx context.Context, opts ...Option) (*Runtime, error) {
	o := options{host: Sockets()[0]}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	copts := []client.Opt{client.FromEnv, client.WithHost(o.host), client.WithAPIVersionNegotiation()}
	c, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to docker at %s: %v: %w", o.host, err, runtime.ErrUnavailable)
	}
	r := &Runtime{host: o.host, c: c}
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, r.mapErr(err, "connecting to docker")
	}
	return r, nil
}

// Close closes the client's idle connections.
func (r *Runtime) Close() error { return r.c.Close() }

// Info reports docker's version and the host as docker sees it.
func (r *Runtime) Info(ctx context.Context) (runtime.Info, error) {
	res, err := r.c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return runtime.Info{}, r.mapErr(err, "getting docker info")
	}
	info := res.Info
	ri := runtime.Info{
		Name:          Name,
		Version:       info.ServerVersion,
		Socket:        r.host,
		CgroupDriver:  info.CgroupDriver,
		CgroupVersion: 1,
		MemoryLimit:   info.MemoryLimit,
		PidsLimit:     info.PidsLimit,
		CPUShares:     info.CPUShares,
	}
	if info.CgroupVersion == "2" {
		ri.CgroupVersion = 2
	}
	for _, opt := range info.SecurityOptions {
		if strings.Contains(opt, "name=rootless") {
			ri.Rootless = true
		}
	}
	return ri, nil
}

// mapErr maps the client's errors to runtime's sentinels, once, here.
func (r *Runtime) mapErr(err error, doing string) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case client.IsErrConnectionFailed(err):
		return fmt.Errorf("%s: docker at %s: %v: %w", doing, r.host, err, runtime.ErrUnavailable)
	case cerrdefs.IsNotFound(err):
		sentinel = runtime.ErrNotFound
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		sentinel = runtime.ErrAlreadyExists
	case cerrdefs.IsInvalidArgument(err):
		sentinel = runtime.ErrInvalid
	case cerrdefs.IsUnavailable(err):
		sentinel = runtime.ErrUnavailable
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		return fmt.Errorf("%s: %v: %w", doing, err, sentinel)
	}
	return fmt.Errorf("%s: %w", doing, err)
}
