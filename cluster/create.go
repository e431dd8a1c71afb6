package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/cluster/kubeadm"
	"github.com/kinc-dev/kinc/cluster/kubeconfig"
	"github.com/kinc-dev/kinc/lb"
	"github.com/kinc-dev/kinc/nodeimage"
	"github.com/kinc-dev/kinc/runtime"
)

// Progress is told when each step starts and ends; the CLI prints it.
type Progress interface {
	Start(step string)
	End(step string, err error)
}

// CreateOption tunes Create.
type CreateOption func(*createOptions) error

type createOptions struct {
	progress       Progress
	log            *slog.Logger
	retain         bool
	wait           time.Duration
	kubeconfigPath string
	fallback       string
}

// WithProgress reports each step.
func WithProgress(p Progress) CreateOption {
	return func(o *createOptions) error { o.progress = p; return nil }
}

// WithLogger receives step details (commands run, their output on -v).
func WithLogger(l *slog.Logger) CreateOption {
	return func(o *createOptions) error { o.log = l; return nil }
}

// WithRetain keeps what was made when create fails, for debugging.
func WithRetain(retain bool) CreateOption {
	return func(o *createOptions) error { o.retain = retain; return nil }
}

// WithWait waits up to d for every node to be Ready.
func WithWait(d time.Duration) CreateOption {
	return func(o *createOptions) error { o.wait = d; return nil }
}

// WithKubeconfig is the kubeconfig file create merges the cluster into
// (see kubeconfig.Path); empty skips writing one.
func WithKubeconfig(path string) CreateOption {
	return func(o *createOptions) error { o.kubeconfigPath = path; return nil }
}

// WithFallbackVersion is the Kubernetes version assumed for node images
// without /kind/version.
func WithFallbackVersion(v string) CreateOption {
	return func(o *createOptions) error { o.fallback = v; return nil }
}

// Preflight checks that cannot pass inside a node container, and only
// those, are ignored by kubeadm:
//   - SystemVerification: no kernel config or /lib/modules in a container,
//     and it fails on cgroup v1 hosts since v1.35;
//   - Swap: the host's swap shows through; kubelet has failSwapOn: false;
//   - FileContent--proc-sys-net-bridge-bridge-nf-call-iptables: the host
//     may not have br_netfilter loaded, and a container cannot load it.
var ignoredPreflightErrors = "SystemVerification,Swap,FileContent--proc-sys-net-bridge-bridge-nf-call-iptables"

const (
	kubeadmConfigPath = "/kind/kubeadm.conf"
	adminConfPath     = "/etc/kubernetes/admin.conf"
	containerdConfig  = "/etc/containerd/config.toml"
	versionPath       = "/kind/version"
)

// dnsSearchEnv carries networking.dnsSearch to the node's entrypoint.
const dnsSearchEnv = "KINC_DNS_SEARCH"

// NetworkName is the runtime network of a cluster.
func NetworkName(cluster string) string { return "kinc-" + cluster }

// creation is the state of one Create.
type creation struct {
	createOptions
	rt   runtime.Runtime
	info runtime.Info
	cfg  *config.Cluster
	plan *Plan

	network     runtime.Network
	addresses   map[string]Addresses
	made        []string // containers made, for rollback
	netMade     bool
	kubeWrote   bool
	admin       []byte
	staticCNI   bool                   // kinc configures pod networking itself (cni.go)
	imports     map[string]*background // image imports by node
	cpJoins     *background            // joins of the other control planes
	workerJoins *background
}

// Create makes the cluster cfg (defaulted and validated) on rt. On any
// failure, or when ctx is cancelled, it removes everything it made unless
// WithRetain.
func Create(ctx context.Context, rt runtime.Runtime, cfg *config.Cluster, opts ...CreateOption) (err error) {
	c := &creation{rt: rt, cfg: cfg, createOptions: createOptions{
		progress: nopProgress{},
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		fallback: nodeimage.DefaultKubernetesVersion,
	}}
	for _, opt := range opts {
		if err := opt(&c.createOptions); err != nil {
			return err
		}
	}
	if c.info, err = rt.Info(ctx); err != nil {
		return fmt.Errorf("asking the runtime: %w", err)
	}
	if c.plan, err = NewPlan(cfg, c.fallback, WithHost(c.info)); err != nil {
		return err
	}
	// Checks that need no rollback come first: nothing exists yet.
	if c.info.Rootless {
		if err := c.preflight(); err != nil {
			return err
		}
	}
	if err := c.checkFree(ctx); err != nil {
		return err
	}
	defer func() {
		made := c.netMade || len(c.made) > 0
		if err != nil && made && !c.retain {
			c.rollback()
			err = fmt.Errorf("%w\n(everything created was removed; run again with --retain to keep the nodes for debugging)", err)
		} else if err != nil && made {
			err = fmt.Errorf("%w\n(nodes kept because of --retain: collect their logs with `kinc export logs --name %[2]s`; remove them with `kinc delete cluster --name %[2]s`)", err, cfg.Name)
		}
	}()
	// Deferred after the rollback, so it runs first: work left in the
	// background (image imports) stops before nodes are removed.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	never := func() bool { return false }
	when := func(b bool) func() bool { return func() bool { return b } }
	steps := []struct {
		name string
		run  func(context.Context) error
		skip func() bool // asked when the step's turn comes
	}{
		{fmt.Sprintf("Ensuring node image (%s)", c.plan.Nodes[0].Image), c.ensureImages, never},
		{"Preparing nodes", c.provision, never},
		{"Writing configuration", c.configure, never},
		{"Starting control-plane", c.initControlPlane, never},
		{"Installing CNI", c.installCNI, when(cfg.Networking.DisableDefaultCNI)},
		{"Installing StorageClass", c.installStorage, never},
		{"Joining more control-plane nodes", c.joinControlPlanes, when(len(cfg.ControlPlanes()) < 2)},
		{"Joining worker nodes", c.joinWorkers, when(len(cfg.Workers()) == 0)},
		// Only images without a CNI manifest need kinc's routes (cni.go).
		{"Connecting pod networks", c.routePods, func() bool { return len(cfg.Nodes) < 2 || !c.staticCNI }},
		{"Writing kubeconfig", c.writeKubeconfig, when(c.kubeconfigPath == "")},
		{fmt.Sprintf("Waiting ≤ %s for control-plane = Ready", c.wait), c.waitReady, when(c.wait <= 0)},
	}
	for _, s := range steps {
		if s.skip() {
			continue
		}
		if err := step(ctx, c.progress, s.name, s.run); err != nil {
			return err
		}
	}
	return nil
}

// step brackets one action with progress and names it in its error.
func step(ctx context.Context, p Progress, name string, run func(context.Context) error) error {
	p.Start(name)
	err := run(ctx)
	if err == nil {
		err = ctx.Err()
	}
	p.End(name, err)
	if err != nil {
		return fmt.Errorf("%s: %w", strings.ToLower(name[:1])+name[1:], err)
	}
	return nil
}

type nopProgress struct{}

func (nopProgress) Start(string)      {}
func (nopProgress) End(string, error) {}

// checkFree fails, before anything is made, when the cluster exists or a
// host port it needs is taken.
func (c *creation) checkFree(ctx context.Context) error {
	if err := hostSupports(c.cfg.Networking, hostKernel); err != nil {
		return err
	}
	existing, err := c.rt.ListNodes(ctx, map[string]string{runtime.LabelCluster: c.cfg.Name})
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	if len(existing) > 0 {
		return fmt.Errorf("cluster %q already exists (%s): delete it with `kinc delete cluster --name %s`, or choose another --name", c.cfg.Name, existing[0].Name, c.cfg.Name)
	}
	for _, p := range c.allPorts() {
		if p.HostPort == 0 {
			continue
		}
		if err := portFree(p); err != nil {
			return err
		}
	}
	return nil
}

// kernel answers what the host kernel offers; the node containers share it.
type kernel struct {
	ipv6 func() bool
	ipvs func() bool
}

// hostKernel reads /proc: an IPv6 stack that is not disabled, and IPVS
// (loaded ip_vs lists its table at /proc/net/ip_vs).
var hostKernel = kernel{
	ipv6: func() bool {
		b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
		return err == nil && strings.TrimSpace(string(b)) == "0"
	},
	ipvs: func() bool {
		_, err := os.Stat("/proc/net/ip_vs")
		return err == nil
	},
}

// hostSupports refuses, before anything exists, networking the host's
// kernel cannot give the nodes.
func hostSupports(n config.Networking, k kernel) error {
	if n.IPFamily != config.IPv4Family && n.IPFamily != "" && !k.ipv6() {
		return fmt.Errorf("networking.ipFamily %s needs IPv6, which this host's kernel has disabled (/proc/sys/net/ipv6/conf/all/disable_ipv6 is not 0): enable it with `sysctl -w net.ipv6.conf.all.disable_ipv6=0`, or use ipFamily ipv4", n.IPFamily)
	}
	if n.KubeProxyMode == config.IPVSProxyMode && !k.ipvs() {
		return fmt.Errorf("networking.kubeProxyMode ipvs needs the host kernel's IPVS, which is not loaded (no /proc/net/ip_vs): load it with `modprobe -a ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh`, or use kubeProxyMode iptables or nftables")
	}
	return nil
}

// preflight refuses a host that cannot run rootless nodes, listing each
// fix, and logs its warnings.
func (c *creation) preflight() error {
	var ports []int
	for _, p := range c.allPorts() {
		ports = append(ports, int(p.HostPort))
	}
	report, err := runtime.Preflight(c.info, runtime.WithHostPorts(ports...))
	if err != nil {
		return err
	}
	for _, w := range report.Filter(runtime.LevelWarning) {
		c.log.Warn("preflight: " + w.String())
	}
	return report.Err()
}

// portFree tries to bind a host port the cluster asks for.
func portFree(p config.PortMapping) error {
	addr := net.JoinHostPort(p.ListenAddress, fmt.Sprint(p.HostPort))
	var closer io.Closer
	var err error
	if p.Protocol == config.PortProtocolUDP {
		closer, err = net.ListenPacket("udp", addr)
	} else {
		closer, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("host port %s/%s is in use: free it, or change hostPort (or networking.apiServerPort) in the config", addr, strings.ToLower(string(p.Protocol)))
	}
	return closer.Close()
}

func (c *creation) allPorts() []config.PortMapping {
	var ports []config.PortMapping
	for _, n := range c.plan.Nodes {
		ports = append(ports, n.Ports...)
	}
	if c.plan.LoadBalancer != nil {
		ports = append(ports, c.plan.LoadBalancer.Ports...)
	}
	return ports
}

// ensureImages checks that every node image is in the runtime.
func (c *creation) ensureImages(ctx context.Context) error {
	seen := map[string]bool{}
	for _, n := range c.plan.Nodes {
		if seen[n.Image] {
			continue
		}
		seen[n.Image] = true
		ok, err := c.rt.ImageExists(ctx, n.Image)
		if err != nil {
			return fmt.Errorf("looking for node image %q: %w", n.Image, err)
		}
		if !ok {
			return fmt.Errorf("node image %q is not in %s: build and load it with `kinc build node-image --load`, or name another one with --image", n.Image, c.info.Name)
		}
	}
	return nil
}

// provision makes the network and every container, concurrently.
func (c *creation) provision(ctx context.Context) error {
	net, err := c.ensureNetwork(ctx)
	if err != nil {
		return err
	}
	c.network, c.netMade = net, true

	specs := c.nodeSpecs()
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	if c.addresses, err = assignAddresses(net, names, nil); err != nil {
		return err
	}
	for i := range specs {
		a := c.addresses[specs[i].Name]
		specs[i].IP, specs[i].IPv6 = a.IPv4, a.IPv6
		c.made = append(c.made, specs[i].Name)
	}
	err = forEach(ctx, specs, func(ctx context.Context, s runtime.NodeSpec) error {
		if _, err := c.rt.CreateNode(ctx, s); err != nil {
			return fmt.Errorf("creating container %s: %w", s.Name, err)
		}
		return node{c.rt, s.Name}.waitForSystemd(ctx, 2*time.Minute)
	})
	if err != nil {
		return err
	}
	// Now that nodes have addresses and the image says its version, render
	// the kubeadm configs for real.
	version := c.fallback
	if v, err := (node{c.rt, c.plan.Nodes[0].Name}).readFile(ctx, versionPath); err == nil {
		version = strings.TrimSpace(string(v))
	}
	token, key, err := joinSecrets()
	if err != nil {
		return err
	}
	c.plan, err = NewPlan(c.cfg, c.fallback, WithHost(c.info), WithKubernetesVersion(version),
		WithAddresses(c.addresses), WithJoinSecrets(token, key))
	return err
}

// ensureNetwork makes the cluster's network, or finds it (node add).
// ipv6 and dual clusters get an IPv6 subnet next to the IPv4 one.
func (c *creation) ensureNetwork(ctx context.Context) (runtime.Network, error) {
	n, err := c.rt.EnsureNetwork(ctx, runtime.NetworkSpec{
		Name:   NetworkName(c.cfg.Name),
		Labels: map[string]string{runtime.LabelCluster: c.cfg.Name},
		IPv6:   c.cfg.Networking.IPFamily != config.IPv4Family,
	})
	if err != nil {
		return runtime.Network{}, fmt.Errorf("ensuring network %s: %w", NetworkName(c.cfg.Name), err)
	}
	return n, nil
}

// nodeSpecs turns the plan into container specs.
func (c *creation) nodeSpecs() []runtime.NodeSpec {
	netName := NetworkName(c.cfg.Name)
	var env map[string]string
	if search := c.cfg.Networking.DNSSearch; search != nil {
		// The node's entrypoint writes them to its resolv.conf.
		env = map[string]string{dnsSearchEnv: strings.Join(*search, " ")}
	}
	var specs []runtime.NodeSpec
	for _, n := range c.plan.Nodes {
		specs = append(specs, runtime.NodeSpec{
			Name: n.Name, Image: n.Image, Hostname: n.Name, Labels: n.Labels, Env: env,
			Network: netName, Mounts: mounts(n.Mounts), Ports: ports(n.Ports),
		})
	}
	if lbp := c.plan.LoadBalancer; lbp != nil {
		specs = append(specs, runtime.NodeSpec{
			Name: lbp.Name, Image: lbp.Image, Hostname: lbp.Name, Labels: lbp.Labels,
			Network: netName, Ports: ports(lbp.Ports),
		})
	}
	return specs
}

func mounts(ms []config.Mount) []runtime.Mount {
	var out []runtime.Mount
	for _, m := range ms {
		host := m.HostPath
		if abs, err := filepath.Abs(host); err == nil {
			host = abs
		}
		prop := runtime.PropagationNone
		switch m.Propagation {
		case config.MountPropagationHostToContainer:
			prop = runtime.PropagationHostToContainer
		case config.MountPropagationBidirectional:
			prop = runtime.PropagationBidirectional
		}
		out = append(out, runtime.Mount{HostPath: host, ContainerPath: m.ContainerPath, ReadOnly: m.ReadOnly, SELinuxRelabel: m.SelinuxRelabel, Propagation: prop})
	}
	return out
}

func ports(ps []config.PortMapping) []runtime.PortMapping {
	var out []runtime.PortMapping
	for _, p := range ps {
		out = append(out, runtime.PortMapping{ListenAddress: p.ListenAddress, HostPort: int(p.HostPort), ContainerPort: int(p.ContainerPort), Protocol: strings.ToLower(string(p.Protocol))})
	}
	return out
}

// joinSecrets returns a fresh bootstrap token and certificate key.
func joinSecrets() (token, key string, err error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 22)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generating a bootstrap token: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	key, err = kubeadm.NewCertificateKey()
	return string(b[:6]) + "." + string(b[6:]), key, err
}

// configure writes each node's kubeadm config, the cluster's config (for
// nodes added later) and containerd config, and the load balancer's
// haproxy config.
func (c *creation) configure(ctx context.Context) error {
	driver := c.plan.cgroupDriver
	err := forEach(ctx, c.plan.Nodes, func(ctx context.Context, np NodePlan) error {
		n := node{c.rt, np.Name}
		if err := n.writeFile(ctx, kubeadmConfigPath, []byte(np.KubeadmConfig), 0o644); err != nil {
			return err
		}
		if err := writeClusterConfig(ctx, n, c.cfg); err != nil {
			return err
		}
		return c.configureContainerd(ctx, n, driver)
	})
	if err != nil || c.plan.LoadBalancer == nil {
		return err
	}
	lbn := node{c.rt, c.plan.LoadBalancer.Name}
	if err := lbn.writeFile(ctx, lb.ConfigPath, []byte(c.plan.LoadBalancer.Config), 0o644); err != nil {
		return err
	}
	if err := lbn.writeFile(ctx, lb.DropInPath, []byte(lb.DropIn), 0o644); err != nil {
		return err
	}
	return lbn.run(ctx, nil, lb.StartCommand()...)
}

// configureContainerd sets the node's cgroup driver and the user's
// containerd patches, restarting containerd when the file changed.
func (c *creation) configureContainerd(ctx context.Context, n node, driver string) error {
	base, err := n.readFile(ctx, containerdConfig)
	if err != nil {
		return err
	}
	driverPatch := fmt.Sprintf("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  SystemdCgroup = %t\n", driver == "systemd")
	patches := append([]string{driverPatch}, c.cfg.ContainerdConfigPatches...)
	updated, err := kubeadm.ContainerdConfig(string(base), patches, c.cfg.ContainerdConfigPatchesJSON6902)
	if err != nil {
		return fmt.Errorf("patching containerd config of %s: %w", n.name, err)
	}
	if updated == string(base) {
		return nil
	}
	if err := n.writeFile(ctx, containerdConfig, []byte(updated), 0o644); err != nil {
		return err
	}
	return n.run(ctx, nil, "systemctl", "restart", "containerd")
}

// loadImages imports the preloaded images into the node's containerd and
// waits until its CRI plugin (what kubelet and kubeadm ask) lists them.
// The archives unpack says yes to are also laid out as snapshots, which
// kubelet's first containers would otherwise do while the node starts:
// worth it for imports that run in the background, for the images the
// node will run, not for one that init waits on. unpack may be nil.
func loadImages(ctx context.Context, n node, unpack func(archive string) bool) error {
	// crictl, not ctr: the CRI plugin starts after containerd's API, and
	// an image imported before it watches may stay unseen by kubelet.
	if err := poll(ctx, time.Minute, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		_, err := n.output(ctx, "crictl", "info")
		return err == nil, err
	}); err != nil {
		return fmt.Errorf("waiting for containerd's CRI in %s: %w", n.name, err)
	}
	out, err := n.output(ctx, "sh", "-c", "ls /kind/images/*.tar 2>/dev/null || true")
	if err != nil {
		return err
	}
	files := strings.Fields(out)
	err = forEach(ctx, files, func(ctx context.Context, f string) error {
		cmd := []string{"ctr", "--namespace=k8s.io", "images", "import", "--all-platforms"}
		if unpack == nil || !unpack(f) {
			cmd = append(cmd, "--no-unpack")
		}
		if _, err := n.output(ctx, append(cmd, f)...); err != nil {
			return fmt.Errorf("importing %s in %s: %w", f, n.name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Every archive holds at least one image.
	return poll(ctx, 30*time.Second, 250*time.Millisecond, func(ctx context.Context) (bool, error) {
		out, err := n.output(ctx, "crictl", "images", "-q")
		if seen := len(strings.Fields(out)); err == nil && seen < len(files) {
			err = fmt.Errorf("containerd in %s lists %d images after importing %d archives", n.name, seen, len(files))
		}
		return err == nil, err
	})
}

// firstControlPlane is the node that runs kubeadm init.
func (c *creation) firstControlPlane() node {
	for _, n := range c.plan.Nodes {
		if n.Role == config.ControlPlaneRole {
			return node{c.rt, n.Name}
		}
	}
	return node{} // unreachable: validation requires a control plane
}

// background is work that overlaps later steps.
type background struct {
	done chan struct{}
	err  error
}

// wait returns the work's error once it is done.
func (b *background) wait(ctx context.Context) error {
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// behind runs f in the background.
func behind(f func() error) *background {
	b := &background{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.err = f()
	}()
	return b
}

// importImagesBehind starts the image imports of every node but skip, so
// that they overlap kubeadm init; join waits for its node's. With more
// than one control plane, the workers' imports start only once until is
// closed (init is over): the control planes' joins are the critical path
// and the workers' are not, and init runs faster beside fewer imports.
func (c *creation) importImagesBehind(ctx context.Context, skip string, until <-chan struct{}) {
	c.imports = map[string]*background{}
	for _, np := range c.plan.Nodes {
		if np.Name == skip {
			continue
		}
		var after <-chan struct{}
		if np.Role == config.WorkerRole && len(c.cfg.ControlPlanes()) > 1 {
			after = until
		}
		n, unpack := node{c.rt, np.Name}, c.runs(np.Role)
		c.imports[np.Name] = behind(func() error {
			if after != nil {
				select {
				case <-after:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return loadImages(ctx, n, unpack)
		})
	}
}

// Images that only some nodes run, by the name their archive carries
// (nodeimage names archives after the image reference).
var (
	controlPlaneImages = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}
	workloadImages     = []string{"coredns", "local-path-provisioner"}
)

// runs says which preloaded archives a node of the role will start
// containers from: control planes run the control plane's images, and
// the cluster's workloads (DNS, storage) go to the workers when there are
// any; everything else (pause, kube-proxy, the CNI, extra images) runs
// anywhere. The other archives are imported without unpacking, which
// spares the nodes' shared CPU and disk while kubeadm init runs.
func (c *creation) runs(role config.NodeRole) func(archive string) bool {
	workloadsHere := role == config.WorkerRole || len(c.cfg.Workers()) == 0
	return func(archive string) bool {
		base := path.Base(archive)
		has := func(names []string) bool {
			for _, n := range names {
				if strings.Contains(base, "_"+n+"_") {
					return true
				}
			}
			return false
		}
		switch {
		case has(controlPlaneImages):
			return role == config.ControlPlaneRole
		case has(workloadImages):
			return workloadsHere
		}
		return true
	}
}

// imported waits for the node's background import, if one was started.
func (c *creation) imported(ctx context.Context, name string) error {
	im, ok := c.imports[name]
	if !ok {
		return nil
	}
	return im.wait(ctx)
}

func (c *creation) initControlPlane(ctx context.Context) error {
	cp := c.firstControlPlane()
	restore := c.favour(ctx, cp.name)
	err := c.init(ctx, cp)
	restore()
	if err != nil {
		return err
	}
	c.startJoins(ctx)
	return nil
}

// Node CPU weights (cgroup v1 cpu.shares): every container has
// defaultShares; while the first control plane runs kubeadm init, which
// every other step waits on, the other nodes have initShares. What they
// do meanwhile (importing and unpacking images) is not yet on the
// critical path: on 2 cores an HA create was about 3 s faster.
const (
	defaultShares = 1024
	initShares    = 128
)

// favour lowers the CPU weight of every node but first, and returns what
// puts it back. A runtime that cannot (rootless without the cpu
// controller delegated) leaves the weights as they are.
func (c *creation) favour(ctx context.Context, first string) (restore func()) {
	var others []string
	for _, np := range c.plan.Nodes {
		if np.Name != first {
			others = append(others, np.Name)
		}
	}
	set := func(ctx context.Context, shares uint64) {
		_ = forEach(ctx, others, func(ctx context.Context, name string) error {
			if err := c.rt.SetCPUShares(ctx, name, shares); err != nil {
				c.log.Debug("setting a node's CPU weight", "name", name, "shares", shares, "err", err)
			}
			return nil
		})
	}
	set(ctx, initShares)
	return func() { set(context.WithoutCancel(ctx), defaultShares) }
}

func (c *creation) init(ctx context.Context, cp node) error {
	initDone := make(chan struct{})
	defer close(initDone)
	c.importImagesBehind(ctx, cp.name, initDone)
	if err := loadImages(ctx, cp, nil); err != nil {
		return err
	}
	args := []string{"kubeadm", "init", "--config=" + kubeadmConfigPath, "--skip-token-print",
		"--ignore-preflight-errors=" + ignoredPreflightErrors}
	if len(c.cfg.ControlPlanes()) > 1 {
		args = append(args, "--upload-certs")
	}
	stop := cp.nudgeKubelet(ctx, c.ownAPI(cp.name), "/etc/kubernetes/kubelet.conf", awaitRegistration)
	defer stop()
	if err := cp.runLogged(ctx, args...); err != nil {
		return fmt.Errorf("running kubeadm init on %s: %w", cp.name, err)
	}
	admin, err := cp.readFile(ctx, adminConfPath)
	if err != nil {
		return err
	}
	// Without workers the control planes are rendered untainted, so that
	// workloads can run (kubeadm.NodeInput.UntaintControlPlane).
	c.admin = admin
	return nil
}

// kubectl runs kubectl on the first control plane as the cluster admin.
func (c *creation) kubectl(ctx context.Context, args ...string) (string, error) {
	return c.firstControlPlane().kubectl(ctx, args...)
}

// startJoins starts, in the background, the joins of every node but the
// first control plane, as soon as init is done: CNI and storage go in
// meanwhile, and the join steps wait for them. Workers need only the API,
// which the first control plane (behind the load balancer) serves
// already. Control planes join concurrently too: etcd takes one new
// (learner) member at a time, and kubeadm join retries adding its member
// until etcd takes it, so the joins serialize themselves there and
// overlap everything else.
func (c *creation) startJoins(ctx context.Context) {
	first := c.firstControlPlane().name
	var cps, workers []NodePlan
	for _, np := range c.plan.Nodes {
		switch {
		case np.Name == first:
		case np.Role == config.ControlPlaneRole:
			cps = append(cps, np)
		default:
			workers = append(workers, np)
		}
	}
	joinAll := func(nps []NodePlan) func() error {
		return func() error {
			return forEach(ctx, nps, func(ctx context.Context, np NodePlan) error {
				return c.join(ctx, node{c.rt, np.Name})
			})
		}
	}
	c.cpJoins, c.workerJoins = behind(joinAll(cps)), behind(joinAll(workers))
}

func (c *creation) joinControlPlanes(ctx context.Context) error { return c.cpJoins.wait(ctx) }

func (c *creation) joinWorkers(ctx context.Context) error { return c.workerJoins.wait(ctx) }

func (c *creation) join(ctx context.Context, n node) error {
	if err := c.imported(ctx, n.name); err != nil {
		return err
	}
	discovery, err := kubeconfig.Discovery(c.admin)
	if err != nil {
		return err
	}
	if err := n.writeFile(ctx, kubeadm.DiscoveryFile, discovery, 0o644); err != nil {
		return err
	}
	if c.role(n.name) == config.ControlPlaneRole {
		stop := n.nudgeKubelet(ctx, c.ownAPI(n.name), "/etc/kubernetes/bootstrap-kubelet.conf", awaitCertificate)
		defer stop()
	}
	if err := n.runLogged(ctx, "kubeadm", "join", "--config="+kubeadmConfigPath,
		"--ignore-preflight-errors="+ignoredPreflightErrors); err != nil {
		return fmt.Errorf("running kubeadm join on %s: %w", n.name, err)
	}
	return c.configureNodeCNI(ctx, n)
}

// ownAPI is the address of control plane name's own API server.
func (c *creation) ownAPI(name string) string {
	return net.JoinHostPort(c.addresses[name].Primary(c.cfg.Networking.IPFamily), fmt.Sprint(kubeadm.APIServerPort))
}

// role is the planned role of the node called name.
func (c *creation) role(name string) config.NodeRole {
	for _, np := range c.plan.Nodes {
		if np.Name == name {
			return np.Role
		}
	}
	return ""
}

// What a nudged kubelet may be waiting for (nudgeKubelet).
const (
	// Its client certificate: a joining control plane's, under kubeadm's
	// ControlPlaneKubeletLocalMode (which kinc turns off only on v1.33 and
	// v1.34, see kubeadm's kubeadmGates), asks its own API server for it,
	// and that server starts only after the node's etcd member has
	// joined: each request until then fails and kubelet backs off 2, 4,
	// 8, 16 s..., so the certificate came up to 16 s after the server
	// could issue it.
	awaitCertificate = "certificate"
	// Its Node: on the first control plane, kubelet tries to register
	// while its API server starts, backing off 0.1, 0.2, 0.4 ... 6.4 s,
	// and kubeadm init waits for the Node. When the server was slow to
	// start (HA creates, where other nodes unpack images meanwhile), the
	// Node came up to 6 s after the server was ready.
	awaitRegistration = "registration"
)

// nudgeScript waits (at most 5 minutes) until the node's own API server
// at $1 answers /readyz to kubeconfig $3, then restarts kubelet unless it
// has what it was waiting for ($4, with the node's name $5). kubectl,
// which costs CPU the node needs, runs only once something listens on the
// API port ($2, hex).
const nudgeScript = `api=$1 port=$2 kubeconfig=$3 await=$4 name=$5
listening() { awk -v p=":$port\$" '$2 ~ p && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
k() { kubectl --kubeconfig="$kubeconfig" --server="https://$api" --request-timeout=2s "$@" >/dev/null 2>&1 </dev/null; }
has() {
	case $await in
	certificate) [ -e /var/lib/kubelet/pki/kubelet-client-current.pem ] ;;
	registration) k get node "$name" ;;
	esac
}
end=$(( $(date +%s) + 300 ))
while [ "$(date +%s)" -lt "$end" ]; do
	[ "$await" = certificate ] && has && exit 0
	if listening && k get --raw /readyz; then
		has || systemctl restart kubelet
		exit 0
	fi
	sleep 0.5
done`

// nudgeKubelet runs nudgeScript on n until stop is called: restarted once
// its API server is ready, kubelet asks at once instead of at the end of
// its backoff; its static pods keep running across the restart.
func (n node) nudgeKubelet(ctx context.Context, api, kubeconfig, await string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	port := fmt.Sprintf("%04X", kubeadm.APIServerPort)
	go func() { _ = n.run(ctx, nil, "sh", "-c", nudgeScript, "nudge", api, port, kubeconfig, await, n.name) }()
	return cancel
}

// apiEndpoint is where the host reaches the API: the published port of the
// load balancer, or of the only control plane.
func (c *creation) apiEndpoint(ctx context.Context) (string, error) {
	name := c.firstControlPlane().name
	if c.plan.LoadBalancer != nil {
		name = c.plan.LoadBalancer.Name
	}
	st, err := c.rt.InspectNode(ctx, name)
	if err != nil {
		return "", fmt.Errorf("inspecting %s: %w", name, err)
	}
	return hostServer(st)
}

func (c *creation) writeKubeconfig(ctx context.Context) error {
	server, err := c.apiEndpoint(ctx)
	if err != nil {
		return err
	}
	entry, err := kubeconfig.FromAdmin(c.admin, c.cfg.Name, server)
	if err != nil {
		return err
	}
	if err := kubeconfig.Merge(ctx, c.kubeconfigPath, entry); err != nil {
		return err
	}
	c.kubeWrote = true
	return nil
}

// waitReady waits until every node reports Ready.
func (c *creation) waitReady(ctx context.Context) error {
	want := len(c.plan.Nodes)
	return poll(ctx, c.wait, 2*time.Second, func(ctx context.Context) (bool, error) {
		out, err := c.kubectl(ctx, "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return false, err
		}
		ready := strings.Count(out, "=True")
		if ready == want {
			return true, nil
		}
		return false, fmt.Errorf("%d of %d nodes Ready:\n%s", ready, want, out)
	})
}

// rollback removes what create made; it runs on a fresh context because
// the create's own may have been cancelled (Ctrl-C).
func (c *creation) rollback() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c.kubeWrote {
		if err := kubeconfig.Remove(ctx, c.kubeconfigPath, c.cfg.Name); err != nil {
			c.log.Warn("removing kubeconfig entry", "err", err)
		}
	}
	_ = forEach(ctx, c.made, func(ctx context.Context, name string) error {
		if err := c.rt.DeleteNode(ctx, name); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			c.log.Warn("removing container", "name", name, "err", err)
		}
		return nil
	})
	if c.netMade {
		if err := c.rt.DeleteNetwork(ctx, c.network.Name); err != nil && !errors.Is(err, runtime.ErrNotFound) {
			c.log.Warn("removing network", "name", c.network.Name, "err", err)
		}
	}
}

// forEach runs f on every item concurrently and returns the first error;
// the others are cancelled.
func forEach[T any](ctx context.Context, items []T, f func(context.Context, T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, it := range items {
		wg.Add(1)
		go func(it T) {
			defer wg.Done()
			if err := f(ctx, it); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}(it)
	}
	wg.Wait()
	return first
}
