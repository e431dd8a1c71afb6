package containerd

import (
	"context"
	"errors"
	"fmt"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/continuity/fs"

	"github.com/kinc-dev/kinc/runtime"
)

// stopTimeout is how long systemd gets to halt before the node is killed.
const stopTimeout = 30 * time.Second

// CreateNode creates the node's container, its /var and network files, and
// starts it.
func (r *Runtime) CreateNode(ctx context.Context, spec runtime.NodeSpec) (runtime.NodeStatus, error) {
	ctx = r.ctx(ctx)
	if err := runtime.ValidateNodeSpec(spec); err != nil {
		return runtime.NodeStatus{}, fmt.Errorf("creating node: %w", err)
	}
	if err := validName(spec.Name); err != nil {
		return runtime.NodeStatus{}, fmt.Errorf("creating node: %w", err)
	}
	if _, err := r.client.LoadContainer(ctx, spec.Name); err == nil {
		return runtime.NodeStatus{}, fmt.Errorf("creating node %q: %w", spec.Name, runtime.ErrAlreadyExists)
	}
	if os.Geteuid() != 0 {
		// CNI plugins and the /var seeding mount must run inside
		// rootlesskit's namespaces for that; not done yet.
		return runtime.NodeStatus{}, fmt.Errorf("creating node %q: nodes on rootless containerd: %w", spec.Name, runtime.ErrNotSupported)
	}
	if spec.Network == "" && len(spec.Ports) > 0 {
		return runtime.NodeStatus{}, fmt.Errorf("creating node %q: published ports need a network: %w", spec.Name, runtime.ErrInvalid)
	}
	if spec.Network != "" {
		if _, err := r.state.readNetwork(spec.Network); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				err = runtime.ErrNotFound
			}
			return runtime.NodeStatus{}, fmt.Errorf("creating node %q: network %q: %w", spec.Name, spec.Network, err)
		}
	}
	img, err := r.image(ctx, spec.Image)
	if err != nil {
		return runtime.NodeStatus{}, fmt.Errorf("creating node %q: %w", spec.Name, err)
	}
	if ok, err := img.IsUnpacked(ctx, r.snapshotter); err != nil || !ok {
		if err := img.Unpack(ctx, r.snapshotter); err != nil {
			return runtime.NodeStatus{}, fmt.Errorf("unpacking image %q: %w", spec.Image, mapErr(err))
		}
	}
	caps, err := boundingCaps()
	if err != nil {
		return runtime.NodeStatus{}, err
	}
	if spec.Hostname == "" {
		spec.Hostname = spec.Name
	}
	ports, err := runtime.ResolvePorts(spec.Ports)
	if err != nil {
		return runtime.NodeStatus{}, fmt.Errorf("creating node %q: %w", spec.Name, err)
	}
	files := r.state.files(spec.Name)
	opts, err := nodeSpecOpts(spec, img, files, caps, r.namespace)
	if err != nil {
		return runtime.NodeStatus{}, fmt.Errorf("creating node %q: %w", spec.Name, err)
	}
	// The container record claims the name first: only then are the node's
	// files ours to (re)write.
	c, err := r.client.NewContainer(ctx, spec.Name,
		containerd.WithImage(img),
		containerd.WithSnapshotter(r.snapshotter),
		containerd.WithNewSnapshot(spec.Name, img),
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(spec.Labels),
	)
	if err != nil {
		return runtime.NodeStatus{}, fmt.Errorf("creating node %q: %w", spec.Name, mapErr(err))
	}
	fail := func(err error) (runtime.NodeStatus, error) {
		cleanup := context.WithoutCancel(ctx)
		_ = r.DeleteNode(cleanup, spec.Name)
		return runtime.NodeStatus{}, fmt.Errorf("creating node %q: %w", spec.Name, err)
	}
	// Leftovers of a node whose deletion was interrupted must not leak
	// into this one; releasing its lease is best effort.
	_ = r.detach(ctx, spec.Name)
	if err := os.RemoveAll(r.state.nodeDir(spec.Name)); err != nil {
		return fail(err)
	}
	// The image's STOPSIGNAL (a load balancer's, say) wins over systemd's.
	stopSig, err := containerd.GetOCIStopSignal(ctx, img, runtime.StopSignal)
	if err != nil {
		return fail(fmt.Errorf("reading the stop signal of %q: %w", spec.Image, mapErr(err)))
	}
	st := nodeState{
		StopSignal: stopSig,
		Name:       spec.Name,
		Image:      spec.Image,
		Hostname:   spec.Hostname,
		Network:    spec.Network,
		Aliases:    spec.Aliases,
		IPv4:       spec.IP,
		IPv6:       spec.IPv6,
		Ports:      ports,
	}
	if err := r.writeNodeFiles(st, files); err != nil {
		return fail(err)
	}
	if err := r.seedVar(ctx, c, files.varDir); err != nil {
		return fail(err)
	}
	if err := r.startTask(ctx, c); err != nil {
		return fail(err)
	}
	return r.InspectNode(ctx, spec.Name)
}

// writeNodeFiles prepares what a node bind-mounts from the host.
func (r *Runtime) writeNodeFiles(st nodeState, files nodeFiles) error {
	if err := os.MkdirAll(files.varDir, 0o755); err != nil {
		return err
	}
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading host resolv.conf: %w", err)
	}
	self := hostEntry{Names: append([]string{st.Hostname, st.Name}, st.Aliases...)}
	for path, b := range map[string][]byte{
		files.hosts:      renderHosts(self, nil),
		files.resolvConf: renderResolvConf(hostResolv),
		files.hostname:   []byte(st.Hostname + "\n"),
	} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
	}
	return r.state.writeNode(st)
}

// seedVar copies the image's /var into the node's /var directory, as a
// docker volume would be filled on first use.
func (r *Runtime) seedVar(ctx context.Context, c containerd.Container, dst string) error {
	info, err := c.Info(ctx)
	if err != nil {
		return mapErr(err)
	}
	mounts, err := r.client.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		return fmt.Errorf("reading snapshot of %q: %w", c.ID(), mapErr(err))
	}
	err = mount.WithTempMount(ctx, mounts, func(root string) error {
		src := filepath.Join(root, "var")
		if fi, err := os.Lstat(src); err != nil || !fi.IsDir() {
			return nil
		}
		return fs.CopyDir(dst, src, fs.WithAllowXAttrErrors())
	})
	if err != nil {
		return fmt.Errorf("copying /var of the image into %q: %w", dst, err)
	}
	return nil
}

// SetCPUShares updates the running task's cgroup; the container's spec
// keeps its own, which a restart goes back to.
func (r *Runtime) SetCPUShares(ctx context.Context, name string, shares uint64) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, name)
	if err != nil {
		return fmt.Errorf("setting the CPU shares of node %q: %w", name, mapErr(err))
	}
	t, err := c.Task(ctx, nil)
	if err != nil {
		return fmt.Errorf("setting the CPU shares of node %q: %w", name, mapErr(err))
	}
	if err := t.Update(ctx, containerd.WithResources(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}})); err != nil {
		return fmt.Errorf("setting the CPU shares of node %q: %w", name, mapErr(err))
	}
	return nil
}

// StartNode starts a stopped node, on the address it had.
func (r *Runtime) StartNode(ctx context.Context, name string) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, name)
	if err != nil {
		return fmt.Errorf("starting node %q: %w", name, mapErr(err))
	}
	if err := r.startTask(ctx, c); err != nil {
		return fmt.Errorf("starting node %q: %w", name, err)
	}
	return nil
}

// startTask creates the task, wires its network namespace before its
// process runs, then starts it. Output goes to the node's log file, which
// the shim writes itself, so it outlives this process.
func (r *Runtime) startTask(ctx context.Context, c containerd.Container) error {
	name := c.ID()
	if t, err := c.Task(ctx, nil); err == nil {
		s, err := t.Status(ctx)
		if err == nil && (s.Status == containerd.Running || s.Status == containerd.Paused) {
			return nil
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing old task: %w", mapErr(err))
		}
	}
	st, err := r.state.readNode(name)
	if err != nil {
		return fmt.Errorf("reading state of node %q: %w", name, err)
	}
	if st.Attached {
		if err := r.detach(ctx, name); err != nil {
			return err
		}
	}
	task, err := c.NewTask(ctx, cio.LogFile(r.state.logFile(name)))
	if err != nil {
		return fmt.Errorf("creating task: %w", mapErr(err))
	}
	abort := func(err error) error {
		cleanup := context.WithoutCancel(ctx)
		_ = r.detach(cleanup, name)
		_, _ = task.Delete(cleanup, containerd.WithProcessKill)
		return err
	}
	if err := r.attach(ctx, name, fmt.Sprintf("/proc/%d/ns/net", task.Pid())); err != nil {
		return abort(err)
	}
	if err := r.updateNode(name, func(s *nodeState) { s.Started = true }); err != nil {
		return abort(err)
	}
	if err := task.Start(ctx); err != nil {
		return abort(fmt.Errorf("starting task: %w", mapErr(err)))
	}
	return nil
}

// updateNode changes a node's state file under the namespace lock.
func (r *Runtime) updateNode(name string, f func(*nodeState)) error {
	unlock, err := r.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := r.state.readNode(name)
	if err != nil {
		return fmt.Errorf("reading state of node %q: %w", name, err)
	}
	f(&st)
	return r.state.writeNode(st)
}

// StopNode asks systemd to halt (SIGRTMIN+3, or the image's STOPSIGNAL),
// kills the node if it has not within stopTimeout, and releases its
// network attachment.
func (r *Runtime) StopNode(ctx context.Context, name string) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, name)
	if err != nil {
		return fmt.Errorf("stopping node %q: %w", name, mapErr(err))
	}
	sig := stopSignal
	if st, err := r.state.readNode(name); err == nil && st.StopSignal != "" {
		if s, err := containerd.ParseSignal(st.StopSignal); err == nil {
			sig = s
		}
	}
	if err := r.stopTask(ctx, c, sig, stopTimeout); err != nil {
		return fmt.Errorf("stopping node %q: %w", name, err)
	}
	if err := r.detach(ctx, name); err != nil {
		return fmt.Errorf("stopping node %q: %w", name, err)
	}
	return nil
}

// stopTask signals the task, kills it after timeout and removes it. The
// network stays attached: the pinned namespace outlives the task.
func (r *Runtime) stopTask(ctx context.Context, c containerd.Container, sig syscall.Signal, timeout time.Duration) error {
	t, err := c.Task(ctx, nil)
	if isNotFound(err) {
		return nil
	} else if err != nil {
		return mapErr(err)
	}
	s, err := t.Status(ctx)
	if err != nil {
		return mapErr(err)
	}
	if s.Status == containerd.Running || s.Status == containerd.Paused || s.Status == containerd.Created {
		exited, err := t.Wait(ctx)
		if err != nil {
			return mapErr(err)
		}
		if err := t.Kill(ctx, sig); err != nil && !isNotFound(err) {
			return fmt.Errorf("signalling task: %w", mapErr(err))
		}
		select {
		case <-exited:
		case <-time.After(timeout):
			if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !isNotFound(err) {
				return fmt.Errorf("killing task: %w", mapErr(err))
			}
			select {
			case <-exited:
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing task: %w", mapErr(err))
	}
	return nil
}

// DeleteNode kills the node and removes its container, snapshot, network
// attachment and every file kinc kept for it. A network teardown that fails
// does not keep the node alive: the node goes, and the error says what may
// be left.
func (r *Runtime) DeleteNode(ctx context.Context, name string) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, name)
	switch {
	case isNotFound(err):
		if _, serr := os.Stat(r.state.nodeDir(name)); serr != nil {
			return fmt.Errorf("deleting node %q: %w", name, runtime.ErrNotFound)
		}
	case err != nil:
		return fmt.Errorf("deleting node %q: %w", name, mapErr(err))
	default:
		if err := r.stopTask(ctx, c, syscall.SIGKILL, stopTimeout); err != nil {
			return fmt.Errorf("deleting node %q: %w", name, err)
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !isNotFound(err) {
			return fmt.Errorf("deleting node %q: %w", name, mapErr(err))
		}
	}
	netErr := r.detach(ctx, name)
	unlock, err := r.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, _ := r.state.readNode(name)
	if err := unpinNetns(r.netnsPin(name)); err != nil {
		return fmt.Errorf("deleting node %q: %w", name, err)
	}
	if err := os.RemoveAll(r.state.nodeDir(name)); err != nil {
		return fmt.Errorf("deleting node %q: %w", name, err)
	}
	if err := r.refreshHosts(st.Network); err != nil {
		return fmt.Errorf("deleting node %q: %w", name, err)
	}
	if netErr != nil {
		return fmt.Errorf("deleting node %q: the node is gone, but its network was not released (a lease or iptables rules may be left): %w", name, netErr)
	}
	return nil
}

// InspectNode reports the node's state from its task and its addresses and
// ports from kinc's state.
func (r *Runtime) InspectNode(ctx context.Context, name string) (runtime.NodeStatus, error) {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, name)
	if err != nil {
		return runtime.NodeStatus{}, fmt.Errorf("inspecting node %q: %w", name, mapErr(err))
	}
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return runtime.NodeStatus{}, fmt.Errorf("inspecting node %q: %w", name, mapErr(err))
	}
	return r.status(ctx, c, info.Image, info.Labels)
}

func (r *Runtime) status(ctx context.Context, c containerd.Container, image string, labels map[string]string) (runtime.NodeStatus, error) {
	st, err := r.state.readNode(c.ID())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return runtime.NodeStatus{}, fmt.Errorf("reading state of node %q: %w", c.ID(), err)
	}
	if st.Image != "" {
		image = st.Image
	}
	out := runtime.NodeStatus{
		Name:   c.ID(),
		ID:     c.ID(),
		Image:  image,
		Labels: labels,
		State:  runtime.StateUnknown,
		Ports:  st.Ports,
	}
	t, err := c.Task(ctx, nil)
	switch {
	case isNotFound(err):
		out.State = runtime.StateCreated
		if st.Started {
			out.State = runtime.StateStopped
		}
	case err != nil:
		return runtime.NodeStatus{}, fmt.Errorf("inspecting node %q: %w", c.ID(), mapErr(err))
	default:
		s, err := t.Status(ctx)
		if err != nil && !isNotFound(err) {
			return runtime.NodeStatus{}, fmt.Errorf("inspecting node %q: %w", c.ID(), mapErr(err))
		}
		switch s.Status {
		case containerd.Running, containerd.Paused, containerd.Pausing:
			out.State = runtime.StateRunning
		case containerd.Created:
			out.State = runtime.StateCreated
		case containerd.Stopped:
			out.State = runtime.StateStopped
		}
	}
	if out.State == runtime.StateRunning && st.Attached {
		out.IPv4, out.IPv6 = st.IPv4, st.IPv6
	}
	return out, nil
}

// ListNodes returns the nodes of the namespace that carry every label.
func (r *Runtime) ListNodes(ctx context.Context, labels map[string]string) ([]runtime.NodeStatus, error) {
	ctx = r.ctx(ctx)
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", mapErr(err))
	}
	var out []runtime.NodeStatus
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if isNotFound(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("listing nodes: %w", mapErr(err))
		}
		if !runtime.MatchLabels(info.Labels, labels) {
			continue
		}
		s, err := r.status(ctx, c, info.Image, info.Labels)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, runtime.ErrNotFound) || errdefs.IsNotFound(err))
}
