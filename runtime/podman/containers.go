package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"syscall"

	nettypes "github.com/containers/common/libnetwork/types"
	"github.com/containers/podman/v4/pkg/bindings"
	"github.com/containers/podman/v4/pkg/bindings/containers"
	"github.com/containers/podman/v4/pkg/bindings/volumes"
	"github.com/containers/podman/v4/pkg/domain/entities"
	"github.com/containers/podman/v4/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kinc-dev/kinc/runtime"
)

// sigRTMin3 is SIGRTMIN+3 (systemd's halt signal) as Linux numbers it.
const sigRTMin3 = syscall.Signal(37)

// CreateNode creates the node's /var volume and the container, and starts it.
func (r *Runtime) CreateNode(ctx context.Context, node runtime.NodeSpec) (runtime.NodeStatus, error) {
	ports, err := runtime.PrepareNode(node)
	if err != nil {
		return runtime.NodeStatus{}, err
	}
	s, err := nodeSpecgen(node, ports)
	if err != nil {
		return runtime.NodeStatus{}, err
	}
	if exists, err := containers.Exists(r.ctx(ctx), node.Name, nil); err != nil {
		return runtime.NodeStatus{}, r.mapErr(err, fmt.Sprintf("checking container %q", node.Name))
	} else if exists {
		return runtime.NodeStatus{}, fmt.Errorf("creating container %q: %w", node.Name, runtime.ErrAlreadyExists)
	}

	vol := runtime.VolumeName(node.Name)
	labels := map[string]string{runtime.LabelNode: node.Name}
	if c, ok := node.Labels[runtime.LabelCluster]; ok {
		labels[runtime.LabelCluster] = c
	}
	// A volume that exists already is a leftover or a concurrent create's:
	// use it, but never delete it here.
	ownVolume := true
	if _, err := volumes.Create(r.ctx(ctx), entities.VolumeCreateOptions{Name: vol, Labels: labels}, nil); err != nil {
		if err = r.mapErr(err, fmt.Sprintf("creating volume %q", vol)); !errors.Is(err, runtime.ErrAlreadyExists) {
			return runtime.NodeStatus{}, err
		}
		ownVolume = false
	}
	ownContainer, created := false, false
	defer func() {
		if created {
			return
		}
		// Leave nothing of ours behind on failure.
		bg := r.ctx(context.WithoutCancel(ctx))
		if ownContainer {
			_, _ = containers.Remove(bg, node.Name, new(containers.RemoveOptions).WithForce(true).WithIgnore(true))
		}
		if ownVolume {
			_ = volumes.Remove(bg, vol, new(volumes.RemoveOptions).WithForce(true))
		}
	}()
	if _, err := containers.CreateWithSpec(r.ctx(ctx), s, nil); err != nil {
		err = r.mapErr(err, fmt.Sprintf("creating container %q", node.Name))
		if errors.Is(err, runtime.ErrAlreadyExists) {
			ownVolume = false // the winner of a concurrent create uses it
		}
		return runtime.NodeStatus{}, err
	}
	ownContainer = true
	if err := containers.Start(r.ctx(ctx), node.Name, nil); err != nil {
		return runtime.NodeStatus{}, r.mapErr(err, fmt.Sprintf("starting container %q", node.Name))
	}
	st, err := r.InspectNode(ctx, node.Name)
	if err != nil {
		return runtime.NodeStatus{}, err
	}
	created = true
	return st, nil
}

// nodeSpecgen translates a NodeSpec to podman's create spec. Podman's
// systemd mode stays off: on cgroup v1 it shares the host's name=systemd
// hierarchy between nodes, and deleting one node breaks the others. The
// image's entrypoint (told container=podman) prepares the node instead.
func nodeSpecgen(node runtime.NodeSpec, ports []runtime.PortMapping) (*specgen.SpecGenerator, error) {
	s := specgen.NewSpecGenerator(node.Image, false)
	s.Name = node.Name
	s.Hostname = node.Hostname
	if s.Hostname == "" {
		s.Hostname = node.Name
	}
	s.Labels = node.Labels
	s.Env = map[string]string{}
	for _, kv := range runtime.NodeEnv(node, Name) {
		k, v, _ := strings.Cut(kv, "=")
		s.Env[k] = v
	}
	s.Command = node.Command
	s.Systemd = "false"
	s.Privileged = true
	s.CgroupNS = specgen.Namespace{NSMode: specgen.Private}
	sig := sigRTMin3
	s.StopSignal = &sig
	timeout := uint(stopTimeout.Seconds())
	s.StopTimeout = &timeout
	s.ResourceLimits = &spec.LinuxResources{Pids: &spec.LinuxPids{Limit: -1}}
	// Terminal keeps systemd's console output line-buffered in the logs.
	s.Terminal = true

	for _, dir := range runtime.NodeTmpfs {
		s.Mounts = append(s.Mounts, spec.Mount{Type: "tmpfs", Source: "tmpfs", Destination: dir, Options: []string{"rw", "nosuid", "nodev"}})
	}
	for _, m := range runtime.NodeMounts(node) {
		s.Mounts = append(s.Mounts, spec.Mount{
			Type: "bind", Source: m.HostPath, Destination: m.ContainerPath,
			Options: append([]string{"rbind"}, runtime.MountOptions(m)...),
		})
	}
	s.Volumes = []*specgen.NamedVolume{{Name: runtime.VolumeName(node.Name), Dest: runtime.VarPath}}

	for _, p := range ports {
		s.PortMappings = append(s.PortMappings, nettypes.PortMapping{
			HostIP: p.ListenAddress, HostPort: uint16(p.HostPort), ContainerPort: uint16(p.ContainerPort), Protocol: p.Protocol,
		})
	}
	if node.Network != "" {
		opts := nettypes.PerNetworkOptions{Aliases: node.Aliases}
		for _, ip := range []string{node.IP, node.IPv6} {
			if ip == "" {
				continue
			}
			parsed := net.ParseIP(ip)
			if parsed == nil {
				return nil, fmt.Errorf("node %q: IP %q: %w", node.Name, ip, runtime.ErrInvalid)
			}
			opts.StaticIPs = append(opts.StaticIPs, parsed)
		}
		s.NetNS = specgen.Namespace{NSMode: specgen.Bridge}
		s.Networks = map[string]nettypes.PerNetworkOptions{node.Network: opts}
	}
	return s, nil
}

// StartNode starts a stopped node.
func (r *Runtime) StartNode(ctx context.Context, name string) error {
	return r.mapErr(containers.Start(r.ctx(ctx), name, nil), fmt.Sprintf("starting container %q", name))
}

// StopNode stops a node, giving systemd time to shut down.
func (r *Runtime) StopNode(ctx context.Context, name string) error {
	opts := new(containers.StopOptions).WithTimeout(uint(stopTimeout.Seconds()))
	return r.mapErr(containers.Stop(r.ctx(ctx), name, opts), fmt.Sprintf("stopping container %q", name))
}

func (r *Runtime) SetCPUShares(ctx context.Context, name string, shares uint64) error {
	_, err := containers.Update(r.ctx(ctx), &entities.ContainerUpdateOptions{
		NameOrID: name,
		Specgen: &specgen.SpecGenerator{ContainerResourceConfig: specgen.ContainerResourceConfig{
			ResourceLimits: &spec.LinuxResources{CPU: &spec.LinuxCPU{Shares: &shares}},
		}},
	})
	return r.mapErr(err, fmt.Sprintf("setting the CPU shares of container %q", name))
}

// DeleteNode force-removes the container and its /var volume.
func (r *Runtime) DeleteNode(ctx context.Context, name string) error {
	// Timeout 0 kills at once, as docker's forced removal does: waiting for
	// the node's systemd to shut down only delays a container that goes.
	_, err := containers.Remove(r.ctx(ctx), name, new(containers.RemoveOptions).WithForce(true).WithVolumes(true).WithTimeout(0))
	err = r.mapErr(err, fmt.Sprintf("removing container %q", name))
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return err
	}
	vol := runtime.VolumeName(name)
	if verr := volumes.Remove(r.ctx(ctx), vol, new(volumes.RemoveOptions).WithForce(true)); verr != nil {
		if verr = r.mapErr(verr, fmt.Sprintf("removing volume %q", vol)); !errors.Is(verr, runtime.ErrNotFound) {
			return verr
		}
	}
	return err
}

// InspectNode reports a node's state, address and published ports.
func (r *Runtime) InspectNode(ctx context.Context, name string) (runtime.NodeStatus, error) {
	data, err := containers.Inspect(r.ctx(ctx), name, nil)
	if err != nil {
		return runtime.NodeStatus{}, r.mapErr(err, fmt.Sprintf("inspecting container %q", name))
	}
	st := runtime.NodeStatus{
		Name:  strings.TrimPrefix(data.Name, "/"),
		ID:    data.ID,
		Image: data.ImageName,
	}
	if data.State != nil {
		st.State = runtime.ParseState(data.State.Status)
	}
	if data.Config != nil {
		st.Labels = data.Config.Labels
	}
	if ns := data.NetworkSettings; ns != nil {
		st.IPv4, st.IPv6 = ns.IPAddress, ns.GlobalIPv6Address
		names := make([]string, 0, len(ns.Networks))
		for n := range ns.Networks {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if st.IPv4 == "" {
				st.IPv4 = ns.Networks[n].IPAddress
			}
			if st.IPv6 == "" {
				st.IPv6 = ns.Networks[n].GlobalIPv6Address
			}
		}
		for key, binds := range ns.Ports {
			for _, b := range binds {
				p, err := runtime.ParsePortBinding(key, b.HostIP, b.HostPort)
				if err != nil {
					return runtime.NodeStatus{}, fmt.Errorf("inspecting container %q: %w", name, err)
				}
				st.Ports = append(st.Ports, p)
			}
		}
		runtime.SortPorts(st.Ports)
	}
	return st, nil
}

// ListNodes returns the containers, running or not, carrying every label.
func (r *Runtime) ListNodes(ctx context.Context, labels map[string]string) ([]runtime.NodeStatus, error) {
	opts := new(containers.ListOptions).WithAll(true)
	if len(labels) > 0 {
		opts = opts.WithFilters(map[string][]string{"label": runtime.LabelFilters(labels)})
	}
	list, err := containers.List(r.ctx(ctx), opts)
	if err != nil {
		return nil, r.mapErr(err, "listing containers")
	}
	out := make([]runtime.NodeStatus, 0, len(list))
	for _, c := range list {
		if len(c.Names) == 0 || !runtime.MatchLabels(c.Labels, labels) {
			continue
		}
		st, err := r.InspectNode(ctx, c.Names[0])
		if errors.Is(err, runtime.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CopyTo extracts a tar stream into dir inside the node. The request is made
// here rather than with containers.CopyFromArchive, which drops the error the
// service sends and leaves the response open.
func (r *Runtime) CopyTo(ctx context.Context, name, dir string, tar io.Reader) error {
	doing := fmt.Sprintf("copying into %s:%s", name, dir)
	conn, err := bindings.GetClient(r.conn)
	if err != nil {
		return r.mapErr(err, doing)
	}
	resp, err := conn.DoRequest(ctx, tar, http.MethodPut, "/containers/%s/archive", url.Values{"path": {dir}}, nil, name)
	if err != nil {
		return r.mapErr(err, doing)
	}
	defer resp.Body.Close()
	return r.mapErr(resp.Process(nil), doing)
}

// CopyFrom streams path inside the node as a tar archive.
func (r *Runtime) CopyFrom(ctx context.Context, name, path string) (io.ReadCloser, error) {
	// Ask first so that a missing path is an error now, not a broken stream.
	if _, err := containers.Stat(r.ctx(ctx), name, path); err != nil {
		return nil, r.mapErr(err, fmt.Sprintf("copying from %s:%s", name, path))
	}
	pr, pw := io.Pipe()
	copyFn, err := containers.CopyToArchive(r.ctx(ctx), name, path, pw)
	if err != nil {
		return nil, r.mapErr(err, fmt.Sprintf("copying from %s:%s", name, path))
	}
	go func() {
		pw.CloseWithError(r.mapErr(copyFn(), fmt.Sprintf("copying from %s:%s", name, path)))
	}()
	return pr, nil
}

// Logs writes the node's output so far to w.
func (r *Runtime) Logs(ctx context.Context, name string, w io.Writer) error {
	lines := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for l := range lines {
			_, _ = io.WriteString(w, l)
		}
	}()
	opts := new(containers.LogOptions).WithStdout(true).WithStderr(true)
	err := containers.Logs(r.ctx(ctx), name, opts, lines, lines)
	close(lines)
	<-done
	return r.mapErr(err, fmt.Sprintf("reading logs of %q", name))
}
