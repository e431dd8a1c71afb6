package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/kinc-dev/kinc/runtime"
)

// CreateNode creates the node's /var volume and the container, and starts it.
func (r *Runtime) CreateNode(ctx context.Context, node runtime.NodeSpec) (runtime.NodeStatus, error) {
	ports, err := runtime.PrepareNode(node)
	if err != nil {
		return runtime.NodeStatus{}, err
	}
	opts, err := createOptions(node, ports)
	if err != nil {
		return runtime.NodeStatus{}, err
	}
	// A clash must not touch the existing node's volume.
	if _, err := r.c.ContainerInspect(ctx, node.Name, client.ContainerInspectOptions{}); err == nil {
		return runtime.NodeStatus{}, fmt.Errorf("creating container %q: %w", node.Name, runtime.ErrAlreadyExists)
	} else if err := r.mapErr(err, "checking container"); !errors.Is(err, runtime.ErrNotFound) {
		return runtime.NodeStatus{}, err
	}

	vol := runtime.VolumeName(node.Name)
	labels := map[string]string{runtime.LabelNode: node.Name}
	if c, ok := node.Labels[runtime.LabelCluster]; ok {
		labels[runtime.LabelCluster] = c
	}
	// A volume that exists already is a leftover or a concurrent create's:
	// use it, but never delete it here. (Docker's create returns an
	// existing volume, so ask first.)
	ownVolume := false
	if _, err := r.c.VolumeInspect(ctx, vol, client.VolumeInspectOptions{}); err != nil {
		if err = r.mapErr(err, fmt.Sprintf("inspecting volume %q", vol)); !errors.Is(err, runtime.ErrNotFound) {
			return runtime.NodeStatus{}, err
		}
		if _, err := r.c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: vol, Labels: labels}); err != nil {
			return runtime.NodeStatus{}, r.mapErr(err, fmt.Sprintf("creating volume %q", vol))
		}
		ownVolume = true
	}
	ownContainer, created := false, false
	defer func() {
		if created {
			return
		}
		// Leave nothing of ours behind on failure.
		bg := context.WithoutCancel(ctx)
		if ownContainer {
			_, _ = r.c.ContainerRemove(bg, node.Name, client.ContainerRemoveOptions{Force: true})
		}
		if ownVolume {
			_, _ = r.c.VolumeRemove(bg, vol, client.VolumeRemoveOptions{Force: true})
		}
	}()
	if _, err := r.c.ContainerCreate(ctx, opts); err != nil {
		err = r.mapErr(err, fmt.Sprintf("creating container %q", node.Name))
		if errors.Is(err, runtime.ErrAlreadyExists) {
			ownVolume = false // the winner of a concurrent create uses it
		}
		return runtime.NodeStatus{}, err
	}
	ownContainer = true
	if _, err := r.c.ContainerStart(ctx, node.Name, client.ContainerStartOptions{}); err != nil {
		return runtime.NodeStatus{}, r.mapErr(err, fmt.Sprintf("starting container %q", node.Name))
	}
	st, err := r.InspectNode(ctx, node.Name)
	if err != nil {
		return runtime.NodeStatus{}, err
	}
	created = true
	return st, nil
}

// createOptions translates a NodeSpec to docker's create request.
func createOptions(node runtime.NodeSpec, ports []runtime.PortMapping) (client.ContainerCreateOptions, error) {
	hostname := node.Hostname
	if hostname == "" {
		hostname = node.Name
	}
	timeout := int(stopTimeout.Seconds())
	cfg := &container.Config{
		Image:       node.Image,
		Hostname:    hostname,
		Labels:      node.Labels,
		Env:         runtime.NodeEnv(node, Name),
		Cmd:         node.Command,
		StopSignal:  runtime.StopSignal,
		StopTimeout: &timeout,
		// A terminal keeps systemd's console output line-buffered in the logs.
		Tty:          true,
		ExposedPorts: network.PortSet{},
	}
	pidsUnlimited := int64(-1)
	hc := &container.HostConfig{
		Privileged:   true,
		CgroupnsMode: container.CgroupnsModePrivate,
		SecurityOpt:  []string{"seccomp=unconfined", "apparmor=unconfined"},
		Tmpfs:        map[string]string{},
		Mounts:       []mount.Mount{{Type: mount.TypeVolume, Source: runtime.VolumeName(node.Name), Target: runtime.VarPath}},
		PortBindings: network.PortMap{},
		Resources:    container.Resources{PidsLimit: &pidsUnlimited},
	}
	for _, dir := range runtime.NodeTmpfs {
		hc.Tmpfs[dir] = "rw,nosuid,nodev"
	}
	// Binds, not Mounts: only they take SELinux relabelling ("z").
	for _, m := range runtime.NodeMounts(node) {
		bind := m.HostPath + ":" + m.ContainerPath
		if opts := runtime.MountOptions(m); len(opts) > 0 {
			bind += ":" + strings.Join(opts, ",")
		}
		hc.Binds = append(hc.Binds, bind)
	}
	for _, p := range ports {
		port, err := network.ParsePort(runtime.PortKey(p.ContainerPort, p.Protocol))
		if err != nil {
			return client.ContainerCreateOptions{}, fmt.Errorf("node %q: port %d: %v: %w", node.Name, p.ContainerPort, err, runtime.ErrInvalid)
		}
		var hostIP netip.Addr
		if p.ListenAddress != "" {
			if hostIP, err = netip.ParseAddr(p.ListenAddress); err != nil {
				return client.ContainerCreateOptions{}, fmt.Errorf("node %q: listen address %q: %v: %w", node.Name, p.ListenAddress, err, runtime.ErrInvalid)
			}
		}
		cfg.ExposedPorts[port] = struct{}{}
		hc.PortBindings[port] = append(hc.PortBindings[port], network.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(p.HostPort)})
	}
	var nc *network.NetworkingConfig
	if node.Network != "" {
		hc.NetworkMode = container.NetworkMode(node.Network)
		ep := &network.EndpointSettings{Aliases: node.Aliases}
		if node.IP != "" || node.IPv6 != "" {
			ep.IPAMConfig = &network.EndpointIPAMConfig{}
			for _, ip := range []string{node.IP, node.IPv6} {
				if ip == "" {
					continue
				}
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return client.ContainerCreateOptions{}, fmt.Errorf("node %q: IP %q: %v: %w", node.Name, ip, err, runtime.ErrInvalid)
				}
				if a.Is4() {
					ep.IPAMConfig.IPv4Address = a
				} else {
					ep.IPAMConfig.IPv6Address = a
				}
			}
		}
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{node.Network: ep}}
	}
	return client.ContainerCreateOptions{Name: node.Name, Config: cfg, HostConfig: hc, NetworkingConfig: nc}, nil
}

// StartNode starts a stopped node.
func (r *Runtime) StartNode(ctx context.Context, name string) error {
	_, err := r.c.ContainerStart(ctx, name, client.ContainerStartOptions{})
	return r.mapErr(err, fmt.Sprintf("starting container %q", name))
}

// StopNode stops a node, giving systemd time to shut down.
func (r *Runtime) StopNode(ctx context.Context, name string) error {
	timeout := int(stopTimeout.Seconds())
	_, err := r.c.ContainerStop(ctx, name, client.ContainerStopOptions{Timeout: &timeout})
	return r.mapErr(err, fmt.Sprintf("stopping container %q", name))
}

func (r *Runtime) SetCPUShares(ctx context.Context, name string, shares uint64) error {
	_, err := r.c.ContainerUpdate(ctx, name, client.ContainerUpdateOptions{
		Resources: &container.Resources{CPUShares: int64(shares)},
	})
	return r.mapErr(err, fmt.Sprintf("setting the CPU shares of container %q", name))
}

// DeleteNode force-removes the container and its /var volume.
func (r *Runtime) DeleteNode(ctx context.Context, name string) error {
	_, err := r.c.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	err = r.mapErr(err, fmt.Sprintf("removing container %q", name))
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return err
	}
	vol := runtime.VolumeName(name)
	if _, verr := r.c.VolumeRemove(ctx, vol, client.VolumeRemoveOptions{Force: true}); verr != nil {
		if verr = r.mapErr(verr, fmt.Sprintf("removing volume %q", vol)); !errors.Is(verr, runtime.ErrNotFound) {
			return verr
		}
	}
	return err
}

// InspectNode reports a node's state, address and published ports.
func (r *Runtime) InspectNode(ctx context.Context, name string) (runtime.NodeStatus, error) {
	res, err := r.c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return runtime.NodeStatus{}, r.mapErr(err, fmt.Sprintf("inspecting container %q", name))
	}
	data := res.Container
	st := runtime.NodeStatus{Name: strings.TrimPrefix(data.Name, "/"), ID: data.ID}
	if data.Config != nil {
		st.Labels = data.Config.Labels
		st.Image = data.Config.Image
	}
	if data.State != nil {
		st.State = runtime.ParseState(string(data.State.Status))
	}
	if ns := data.NetworkSettings; ns != nil {
		names := make([]string, 0, len(ns.Networks))
		for n := range ns.Networks {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ep := ns.Networks[n]
			if ep == nil {
				continue
			}
			if st.IPv4 == "" && ep.IPAddress.IsValid() {
				st.IPv4 = ep.IPAddress.String()
			}
			if st.IPv6 == "" && ep.GlobalIPv6Address.IsValid() {
				st.IPv6 = ep.GlobalIPv6Address.String()
			}
		}
		for port, binds := range ns.Ports {
			for _, b := range binds {
				ip := ""
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				p, err := runtime.ParsePortBinding(port.String(), ip, b.HostPort)
				if err != nil {
					return runtime.NodeStatus{}, fmt.Errorf("inspecting container %q: %w", name, err)
				}
				st.Ports = append(st.Ports, p)
			}
		}
		runtime.SortPorts(st.Ports)
	}
	// A stopped container has no bindings in NetworkSettings; report the
	// configured ones, which docker will use again on start.
	if len(st.Ports) == 0 && data.HostConfig != nil {
		for port, binds := range data.HostConfig.PortBindings {
			for _, b := range binds {
				ip := ""
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				if p, err := runtime.ParsePortBinding(port.String(), ip, b.HostPort); err == nil {
					st.Ports = append(st.Ports, p)
				}
			}
		}
		runtime.SortPorts(st.Ports)
	}
	return st, nil
}

// ListNodes returns the containers, running or not, carrying every label.
func (r *Runtime) ListNodes(ctx context.Context, labels map[string]string) ([]runtime.NodeStatus, error) {
	filters := client.Filters{}
	if len(labels) > 0 {
		filters.Add("label", runtime.LabelFilters(labels)...)
	}
	res, err := r.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return nil, r.mapErr(err, "listing containers")
	}
	out := make([]runtime.NodeStatus, 0, len(res.Items))
	for _, c := range res.Items {
		if len(c.Names) == 0 || !runtime.MatchLabels(c.Labels, labels) {
			continue
		}
		st, err := r.InspectNode(ctx, strings.TrimPrefix(c.Names[0], "/"))
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

// Exec runs a command in the node.
func (r *Runtime) Exec(ctx context.Context, name string, cmd runtime.ExecSpec) error {
	if len(cmd.Cmd) == 0 {
		return fmt.Errorf("exec in %q: empty command: %w", name, runtime.ErrInvalid)
	}
	doing := fmt.Sprintf("exec %q in %q", strings.Join(cmd.Cmd, " "), name)
	created, err := r.c.ExecCreate(ctx, name, client.ExecCreateOptions{
		User: cmd.User, Env: runtime.EnvList(cmd.Env), Cmd: cmd.Cmd,
		AttachStdin: cmd.Stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return r.mapErr(err, doing)
	}
	att, err := r.c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return r.mapErr(err, doing)
	}
	defer att.Close()
	out := runtime.NewExecOutput(cmd)
	if cmd.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, cmd.Stdin)
			_ = att.CloseWrite() // EOF for the command
		}()
	}
	// Closing the connection on cancellation ends StdCopy.
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	if _, err := stdcopy.StdCopy(out.Stdout(), out.Stderr(), att.Reader); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", doing, ctx.Err())
		}
		return r.mapErr(err, doing)
	}
	ins, err := r.c.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return r.mapErr(err, doing)
	}
	return out.Result(name, cmd.Cmd, ins.ExitCode)
}

// CopyTo extracts a tar stream into dir inside the node.
func (r *Runtime) CopyTo(ctx context.Context, name, dir string, tar io.Reader) error {
	_, err := r.c.CopyToContainer(ctx, name, client.CopyToContainerOptions{DestinationPath: dir, Content: tar})
	return r.mapErr(err, fmt.Sprintf("copying into %s:%s", name, dir))
}

// CopyFrom streams path inside the node as a tar archive.
func (r *Runtime) CopyFrom(ctx context.Context, name, path string) (io.ReadCloser, error) {
	res, err := r.c.CopyFromContainer(ctx, name, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return nil, r.mapErr(err, fmt.Sprintf("copying from %s:%s", name, path))
	}
	return res.Content, nil
}

// Logs writes the node's output so far to w.
func (r *Runtime) Logs(ctx context.Context, name string, w io.Writer) error {
	doing := fmt.Sprintf("reading logs of %q", name)
	res, err := r.c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return r.mapErr(err, doing)
	}
	rc, err := r.c.ContainerLogs(ctx, name, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return r.mapErr(err, doing)
	}
	defer rc.Close()
	// With a terminal the stream is raw; without, multiplexed.
	if res.Container.Config != nil && res.Container.Config.Tty {
		_, err = io.Copy(w, rc)
	} else {
		_, err = stdcopy.StdCopy(w, w, rc)
	}
	return r.mapErr(err, doing)
}
