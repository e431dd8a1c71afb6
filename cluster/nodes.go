package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/lb"
	"github.com/kinc-dev/kinc/nodeimage"
	"github.com/kinc-dev/kinc/runtime"
)

// clusterConfigPath keeps, in every node, the config the cluster was
// created from (after defaults): a node added later needs its networking,
// patches and feature gates.
const clusterConfigPath = "/kind/cluster.json"

func writeClusterConfig(ctx context.Context, n node, c *config.Cluster) error {
	data, err := encodeClusterConfig(c)
	if err != nil {
		return err
	}
	return n.writeFile(ctx, clusterConfigPath, data, 0o644)
}

// encodeClusterConfig writes c as a v1alpha4 file, so that config.Parse
// reads it back with the same defaults and checks as any config file.
func encodeClusterConfig(c *config.Cluster) ([]byte, error) {
	data, err := json.MarshalIndent(struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		*config.Cluster
	}{config.APIVersionV1Alpha4, "Cluster", c}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the config of cluster %q: %w", c.Name, err)
	}
	return append(data, '\n'), nil
}

// liveCluster is a cluster as its containers show it now.
type liveCluster struct {
	rt    runtime.Runtime
	name  string
	nodes []runtime.NodeStatus // the Kubernetes nodes' containers, by name
	lb    *runtime.NodeStatus  // nil with a single control plane
}

func inspectCluster(ctx context.Context, rt runtime.Runtime, name string) (*liveCluster, error) {
	all, err := Nodes(ctx, rt, name)
	if err != nil {
		return nil, err
	}
	l := &liveCluster{rt: rt, name: name}
	for i := range all {
		if all[i].Labels[runtime.LabelRole] == RoleLoadBalancer {
			l.lb = &all[i]
			continue
		}
		l.nodes = append(l.nodes, all[i])
	}
	if len(l.nodes) == 0 {
		return nil, fmt.Errorf("cluster %q %w (list clusters with `kinc get clusters`)", name, runtime.ErrNotFound)
	}
	return l, nil
}

func (l *liveCluster) names() []string {
	var out []string
	for _, n := range l.nodes {
		out = append(out, n.Name)
	}
	return out
}

func (l *liveCluster) balancer() []runtime.NodeStatus {
	if l.lb == nil {
		return nil
	}
	return []runtime.NodeStatus{*l.lb}
}

func (l *liveCluster) node(name string) (runtime.NodeStatus, bool) {
	for _, n := range l.nodes {
		if n.Name == name {
			return n, true
		}
	}
	return runtime.NodeStatus{}, false
}

func isControlPlane(st runtime.NodeStatus) bool {
	return st.Labels[runtime.LabelRole] == string(config.ControlPlaneRole)
}

// admin picks a running control plane, other than those in skip, to run
// kubeadm and kubectl on: any of them will do once joined, and the first
// one may be the one being removed.
func (l *liveCluster) admin(skip ...string) (node, error) {
	for _, n := range l.nodes {
		if isControlPlane(n) && n.State == runtime.StateRunning && !slices.Contains(skip, n.Name) {
			return node{l.rt, n.Name}, nil
		}
	}
	return node{}, fmt.Errorf("cluster %q has no other running control plane to act from: start one (`kinc get nodes -o wide --name %s` shows their state)", l.name, l.name)
}

// config reads the kept cluster config from the first running node that
// has it.
func (l *liveCluster) config(ctx context.Context) (*config.Cluster, error) {
	var other error
	for _, n := range l.nodes {
		if n.State != runtime.StateRunning {
			continue
		}
		data, err := node{l.rt, n.Name}.readFile(ctx, clusterConfigPath)
		if err == nil {
			return config.Parse(n.Name+":"+clusterConfigPath, data)
		}
		if !errors.Is(err, runtime.ErrNotFound) && other == nil {
			other = err
		}
	}
	if other != nil {
		return nil, fmt.Errorf("reading the config of cluster %q: %w", l.name, other)
	}
	return nil, fmt.Errorf("cluster %q has no %s in its running nodes: it was made by an older kinc, which did not keep its config (or all its nodes are stopped); recreate it with this kinc to add or remove control planes or add workers", l.name, clusterConfigPath)
}

// nextNodeName is the first free name in the sequence create names nodes
// of the role by: NAME-worker, NAME-worker2, ...; control planes start at
// NAME-control-plane2, NAME-control-plane being the one that ran kubeadm
// init (a plan always renders it with an InitConfiguration).
func nextNodeName(cluster string, role config.NodeRole, taken []string) string {
	first := 1
	if role == config.ControlPlaneRole {
		first = 2
	}
	for i := first; ; i++ {
		name := cluster + "-" + string(role)
		if i > 1 {
			name += strconv.Itoa(i)
		}
		if !slices.Contains(taken, name) {
			return name
		}
	}
}

// sequenceOf is k for NAME-ROLEk (1 for NAME-ROLE).
func sequenceOf(cluster string, role config.NodeRole, name string) int {
	rest := strings.TrimPrefix(name, cluster+"-"+string(role))
	if rest == "" {
		return 1
	}
	k, _ := strconv.Atoi(rest)
	return k
}

// joinConfig is cfg with its nodes replaced so that NewPlan, which names
// nodes by counting each role in order (config.NodeNames), gives n the
// name NAME-ROLEseq and renders it as a joining node: seq-1 copies of n
// come before it, after the control planes for a worker. It returns the
// new node's index. The other role's nodes are kept: they decide the API
// endpoint (the load balancer when several control planes) and whether
// control planes are tainted (not when the cluster was made without
// workers).
func joinConfig(cfg *config.Cluster, n config.Node, seq int) (*config.Cluster, int) {
	c := *cfg
	c.Nodes = nil
	var others []config.Node
	for _, o := range cfg.Nodes {
		if o.Role != n.Role {
			others = append(others, o)
		}
	}
	if n.Role == config.WorkerRole {
		c.Nodes = append(c.Nodes, others...)
	}
	for i := 1; i < seq; i++ {
		c.Nodes = append(c.Nodes, n)
	}
	at := len(c.Nodes)
	c.Nodes = append(c.Nodes, n)
	if n.Role == config.ControlPlaneRole {
		c.Nodes = append(c.Nodes, others...)
	}
	return &c, at
}

// balancerConfig renders the load balancer's haproxy config for the
// control planes named in cps, as create renders it. A control plane
// without a known address (stopped) is reached by name.
func balancerConfig(cfg *config.Cluster, cps map[string]Addresses) (string, error) {
	names := make([]string, 0, len(cps))
	for name := range cps {
		names = append(names, name)
	}
	// By length first: NAME-control-plane2 before NAME-control-plane10.
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	var nodes []NodePlan
	for _, name := range names {
		nodes = append(nodes, NodePlan{Name: name, Role: config.ControlPlaneRole})
	}
	p, err := planLoadBalancer(cfg, nodes, cps)
	if err != nil {
		return "", err
	}
	return p.Config, nil
}

// controlPlaneAddresses are the cluster's control planes but those in
// skip, with their addresses.
func (l *liveCluster) controlPlaneAddresses(skip ...string) map[string]Addresses {
	cps := map[string]Addresses{}
	for _, n := range l.nodes {
		if isControlPlane(n) && !slices.Contains(skip, n.Name) {
			cps[n.Name] = Addresses{IPv4: n.IPv4, IPv6: n.IPv6}
		}
	}
	return cps
}

// rewriteBalancer replaces haproxy's config and reloads it: haproxy's
// master hands its listening sockets to new workers while the old ones
// finish their connections, so no connection is dropped (see package lb).
// When the reload fails the previous config is put back.
func rewriteBalancer(ctx context.Context, lbn node, before []byte, after string) error {
	if string(before) == after {
		return nil
	}
	if err := lbn.writeFile(ctx, lb.ConfigPath, []byte(after), 0o644); err != nil {
		return err
	}
	err := lbn.run(ctx, nil, lb.ReloadCommand()...)
	if err == nil {
		return nil
	}
	if werr := lbn.writeFile(ctx, lb.ConfigPath, before, 0o644); werr != nil {
		return fmt.Errorf("reloading haproxy in %s: %w; putting its previous config back also failed: %v", lbn.name, err, werr)
	}
	return fmt.Errorf("reloading haproxy in %s: %w (its previous config was put back; `journalctl -u haproxy` in that container says why)", lbn.name, err)
}

// kubectl runs kubectl as the cluster admin on n.
func (n node) kubectl(ctx context.Context, args ...string) (string, error) {
	return n.output(ctx, append([]string{"kubectl", "--kubeconfig=" + adminConfPath}, args...)...)
}

// etcdctl runs etcdctl in the etcd static pod of control plane n.
func (n node) etcdctl(ctx context.Context, args ...string) (string, error) {
	const pki = "/etc/kubernetes/pki/etcd/"
	script := `id=$(crictl ps -q --name '^etcd$' --state running | head -n 1)
[ -n "$id" ] || { echo "no running etcd container" >&2; exit 1; }
exec crictl exec "$id" /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=` + pki + `ca.crt --cert=` + pki + `healthcheck-client.crt --key=` + pki + `healthcheck-client.key "$@"`
	return n.output(ctx, append([]string{"sh", "-c", script, "etcdctl"}, args...)...)
}

// etcdMember is a line of `etcdctl member list`.
type etcdMember struct {
	id, name, peerURLs string // name is empty until the member starts
}

// etcdMembers lists etcd's members through control plane n.
func etcdMembers(ctx context.Context, n node) ([]etcdMember, error) {
	out, err := n.etcdctl(ctx, "member", "list", "-w", "simple")
	if err != nil {
		return nil, fmt.Errorf("listing etcd members on %s: %w", n.name, err)
	}
	return parseEtcdMembers(out), nil
}

// parseEtcdMembers reads `etcdctl member list -w simple`: ID, status,
// name, peer URLs, client URLs, is-learner.
func parseEtcdMembers(out string) []etcdMember {
	var members []etcdMember
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ", "); len(f) >= 4 {
			members = append(members, etcdMember{id: f[0], name: f[2], peerURLs: f[3]})
		}
	}
	return members
}

// removeEtcdMember removes the member of node name (by name, or by peer
// address when it never started and has none) through control plane n.
// kubeadm reset removes its own member; this covers a node that could not
// run it. No such member is not an error.
func removeEtcdMember(ctx context.Context, n node, name, addr string) error {
	members, err := etcdMembers(ctx, n)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.name != name && (addr == "" || !strings.Contains(m.peerURLs, "//"+addr+":")) {
			continue
		}
		if _, err := n.etcdctl(ctx, "member", "remove", m.id); err != nil {
			return fmt.Errorf("removing etcd member %s (%s) on %s: %w", m.id, name, n.name, err)
		}
	}
	return nil
}

// checkQuorum refuses to remove control planes when the etcd members left
// would not have a majority up, which would stop etcd and so the API.
// kinc turns etcd's own guard off in HA clusters (its strict
// reconfiguration check, see the kubeadm renderer), so this is the guard.
// A member is up when its node runs and its etcd answers a health check.
func checkQuorum(ctx context.Context, live *liveCluster, cp node, removing []string) error {
	members, err := etcdMembers(ctx, cp)
	if err != nil {
		return err
	}
	var left, up []string
	for _, m := range members {
		if slices.Contains(removing, m.name) {
			continue
		}
		left = append(left, m.name)
		if st, ok := live.node(m.name); !ok || st.State != runtime.StateRunning {
			continue
		}
		if _, err := (node{live.rt, m.name}).etcdctl(ctx, "endpoint", "health"); err == nil {
			up = append(up, m.name)
		}
	}
	if need := len(left)/2 + 1; len(up) < need {
		return fmt.Errorf("removing %s would leave etcd %d member(s) of which %d are up (%s), fewer than the majority of %d it needs to keep serving: start the stopped control planes first (`kinc get nodes -o wide --name %s` shows their state)",
			strings.Join(removing, ", "), len(left), len(up), strings.Join(up, ", "), need, live.name)
	}
	return nil
}

// nodeOptions applies opts over the defaults Create has.
func nodeOptions(opts []CreateOption) (createOptions, error) {
	o := createOptions{
		progress: nopProgress{},
		log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		fallback: nodeimage.DefaultKubernetesVersion,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// addition is one AddNode: a creation narrowed to the new node, whose
// steps (configure, join, routePods, ...) it reuses.
type addition struct {
	*creation
	live  *liveCluster
	cp    node // a running control plane the new node joins through
	want  config.Node
	name  string
	token string
	key   string

	joined   bool   // kubeadm join ran: undo it before removing the container
	lbBefore []byte // haproxy's config before; nil while untouched
}

// AddNode adds one node to an existing cluster and returns its name: the
// first free one of its role (see nextNodeName). want gives its role
// (worker when empty) and image (when empty, the image the cluster's
// config gives that role); per-node settings (ports, mounts, labels,
// patches) are not taken from other nodes. The node gets the cluster's
// config as create kept it in every node, a fresh bootstrap token and,
// for a control plane, freshly uploaded certificates; a control plane
// then joins the load balancer, which is reloaded without dropping
// connections. On failure the node is undone (kubeadm reset, etcd member,
// Kubernetes node, container) and the load balancer left as it was,
// unless WithRetain.
func AddNode(ctx context.Context, rt runtime.Runtime, cluster string, want config.Node, opts ...CreateOption) (name string, err error) {
	o, err := nodeOptions(opts)
	if err != nil {
		return "", err
	}
	live, err := inspectCluster(ctx, rt, cluster)
	if err != nil {
		return "", err
	}
	if want.Role == "" {
		want.Role = config.WorkerRole
	}
	switch want.Role {
	case config.WorkerRole:
	case config.ControlPlaneRole:
		if live.lb == nil {
			return "", fmt.Errorf("cluster %q has a single control plane and no load balancer, and its API endpoint is that node: kinc adds control planes only to clusters created with two or more", cluster)
		}
	default:
		return "", fmt.Errorf("unknown node role %q: use worker or control-plane", want.Role)
	}
	cfg, err := live.config(ctx)
	if err != nil {
		return "", err
	}
	a := &addition{creation: &creation{rt: rt, cfg: cfg, createOptions: o}, live: live, want: want}
	if a.cp, err = live.admin(); err != nil {
		return "", err
	}
	if a.admin, err = a.cp.readFile(ctx, adminConfPath); err != nil {
		return "", err
	}
	if a.want.Image == "" {
		a.want.Image = imageFor(cfg, want.Role)
	}
	known, err := a.kubernetesNodes(ctx)
	if err != nil {
		return "", err
	}
	a.name = nextNodeName(cluster, want.Role, append(live.names(), sortedKeys(known)...))
	if a.info, err = rt.Info(ctx); err != nil {
		return "", fmt.Errorf("asking the runtime: %w", err)
	}
	if err := a.render(WithHost(a.info)); err != nil {
		return "", err
	}
	defer func() {
		if err != nil && len(a.made) > 0 && !a.retain {
			a.undo()
			err = fmt.Errorf("%w\n(the node was removed and the load balancer left as it was; run again with --retain to keep the node for debugging)", err)
		} else if err != nil && len(a.made) > 0 {
			err = fmt.Errorf("%w\n(node kept because of --retain: its kubeadm output is in %s; remove it with `kinc delete node %s --name %s`)", err, KubeadmLogPath, a.name, cluster)
		}
	}()
	type nodeStep struct {
		name string
		run  func(context.Context) error
	}
	steps := []nodeStep{
		{fmt.Sprintf("Ensuring node image (%s)", a.want.Image), a.ensureImages},
		{"Preparing node " + a.name, func(ctx context.Context) error { return a.prepare(ctx, known) }},
		{"Writing configuration", a.configure},
		{"Joining " + a.name, a.join},
	}
	if want.Role == config.ControlPlaneRole {
		steps = append(steps, nodeStep{"Updating load balancer", a.updateBalancer})
	}
	if a.wait > 0 {
		steps = append(steps, nodeStep{fmt.Sprintf("Waiting ≤ %s for %s = Ready", a.wait, a.name), a.waitNodeReady})
	}
	for _, s := range steps {
		if err := step(ctx, a.progress, s.name, s.run); err != nil {
			return "", err
		}
	}
	return a.name, nil
}

// imageFor is the image the config gives the first node of the role, or
// the first node's.
func imageFor(cfg *config.Cluster, role config.NodeRole) string {
	for _, n := range cfg.Nodes {
		if n.Role == role {
			return n.Image
		}
	}
	return cfg.Nodes[0].Image
}

// kubernetesNodes are the cluster's Kubernetes nodes with their InternalIP
// addresses: a stopped node's container may not report its address, and
// a name still registered is not free.
func (a *addition) kubernetesNodes(ctx context.Context) (map[string]string, error) {
	out, err := a.cp.kubectl(ctx, "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}{" "}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}`)
	if err != nil {
		return nil, fmt.Errorf("listing the Kubernetes nodes of cluster %q: %w", a.live.name, err)
	}
	known := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			known[f[0]] = strings.Join(f[1:], " ")
		}
	}
	return known, nil
}

// render plans the new node with the cluster's config, and narrows the
// creation's plan to it: ensureImages, nodeSpecs and configure then act on
// the new node alone.
func (a *addition) render(opts ...PlanOption) error {
	cfg, at := joinConfig(a.cfg, a.want, sequenceOf(a.live.name, a.want.Role, a.name))
	p, err := NewPlan(cfg, a.fallback, opts...)
	if err != nil {
		return err
	}
	if got := p.Nodes[at].Name; got != a.name {
		return fmt.Errorf("planning node %s: the plan named it %s", a.name, got) // a bug in joinConfig
	}
	p.Nodes, p.LoadBalancer = p.Nodes[at:at+1], nil
	a.plan = p
	return nil
}

// prepare creates the node's container on the cluster network at a free
// address, waits for its systemd and renders its kubeadm config for the
// Kubernetes version of its image.
func (a *addition) prepare(ctx context.Context, known map[string]string) error {
	net, err := a.ensureNetwork(ctx)
	if err != nil {
		return err
	}
	var taken []string
	for _, st := range append(a.live.nodes, a.live.balancer()...) {
		taken = append(taken, st.IPv4, st.IPv6)
	}
	for _, addrs := range known {
		taken = append(taken, strings.Fields(addrs)...)
	}
	if a.addresses, err = assignAddresses(net, []string{a.name}, taken); err != nil {
		return err
	}
	spec := a.nodeSpecs()[0]
	spec.IP, spec.IPv6 = a.addresses[a.name].IPv4, a.addresses[a.name].IPv6
	if _, err := a.rt.CreateNode(ctx, spec); err != nil {
		return fmt.Errorf("creating container %s: %w", a.name, err)
	}
	a.made = append(a.made, a.name)
	n := node{a.rt, a.name}
	if err := n.waitForSystemd(ctx, 2*time.Minute); err != nil {
		return err
	}
	version := a.fallback
	if v, err := n.readFile(ctx, versionPath); err == nil {
		version = strings.TrimSpace(string(v))
	}
	if a.token, a.key, err = joinSecrets(); err != nil {
		return err
	}
	return a.render(WithHost(a.info), WithKubernetesVersion(version),
		WithAddresses(a.addresses), WithJoinSecrets(a.token, a.key))
}

// configure registers the join secrets on a running control plane, then
// writes the node's files as create does.
func (a *addition) configure(ctx context.Context) error {
	if _, err := a.cp.output(ctx, "kubeadm", "token", "create", a.token, "--ttl", "15m",
		"--description", "kinc create node "+a.name); err != nil {
		return fmt.Errorf("creating a bootstrap token on %s: %w", a.cp.name, err)
	}
	if a.want.Role == config.ControlPlaneRole {
		if err := a.uploadCerts(ctx); err != nil {
			return err
		}
	}
	return a.creation.configure(ctx)
}

// uploadCerts puts the control-plane certificates, encrypted with the new
// key, in the cluster for the new control plane to fetch (they expire
// with the token, so those create uploaded are gone). kubeadm takes the
// key only from a config file when it is given one, and needs the
// cluster's ClusterConfiguration to know which certificates to upload.
func (a *addition) uploadCerts(ctx context.Context) error {
	cc, err := a.cp.kubectl(ctx, "-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "jsonpath={.data.ClusterConfiguration}")
	if err != nil {
		return fmt.Errorf("reading the cluster's kubeadm config: %w", err)
	}
	var meta struct {
		APIVersion string `yaml:"apiVersion"`
	}
	if err := yaml.Unmarshal([]byte(cc), &meta); err != nil || meta.APIVersion == "" {
		return fmt.Errorf("reading the cluster's kubeadm config: no apiVersion in the kubeadm-config ConfigMap (%v)", err)
	}
	const path = "/kind/upload-certs.conf"
	conf := fmt.Sprintf("apiVersion: %s\nkind: InitConfiguration\ncertificateKey: %s\n---\n%s", meta.APIVersion, a.key, cc)
	if err := a.cp.writeFile(ctx, path, []byte(conf), 0o600); err != nil {
		return err
	}
	defer a.cp.output(context.WithoutCancel(ctx), "rm", "-f", path)
	if _, err := a.cp.output(ctx, "kubeadm", "init", "phase", "upload-certs", "--upload-certs",
		"--skip-certificate-key-print", "--config", path); err != nil {
		return fmt.Errorf("uploading control-plane certificates on %s: %w", a.cp.name, err)
	}
	return nil
}

// join imports the images and runs kubeadm join; creation's steps then
// see every running node, the acting control plane first (kubectl runs
// there, pod routes go to all).
func (a *addition) join(ctx context.Context) error {
	n := node{a.rt, a.name}
	if err := loadImages(ctx, n, nil); err != nil {
		return err
	}
	newNode := a.plan.Nodes[0]
	a.plan.Nodes = []NodePlan{{Name: a.cp.name, Role: config.ControlPlaneRole}}
	for _, st := range a.live.nodes {
		if st.State == runtime.StateRunning && st.Name != a.cp.name {
			a.plan.Nodes = append(a.plan.Nodes, NodePlan{Name: st.Name, Role: config.NodeRole(st.Labels[runtime.LabelRole])})
			a.addresses[st.Name] = Addresses{IPv4: st.IPv4, IPv6: st.IPv6}
		}
	}
	a.plan.Nodes = append(a.plan.Nodes, newNode)
	if st, ok := a.live.node(a.cp.name); ok {
		a.addresses[st.Name] = Addresses{IPv4: st.IPv4, IPv6: st.IPv6}
	}
	// As installCNI decided at create: kinc routes pods itself only when
	// the image has no CNI manifest.
	a.staticCNI = !a.cfg.Networking.DisableDefaultCNI && !a.cp.hasFile(ctx, cniManifest)
	a.joined = true
	if err := a.creation.join(ctx, n); err != nil {
		return err
	}
	if a.staticCNI {
		return a.routePods(ctx)
	}
	return nil
}

// updateBalancer adds the new control plane to the load balancer.
func (a *addition) updateBalancer(ctx context.Context) error {
	lbn := node{a.rt, a.live.lb.Name}
	before, err := lbn.readFile(ctx, lb.ConfigPath)
	if err != nil {
		return err
	}
	cps := a.live.controlPlaneAddresses()
	cps[a.name] = a.addresses[a.name]
	after, err := balancerConfig(a.cfg, cps)
	if err != nil {
		return err
	}
	a.lbBefore = before
	return rewriteBalancer(ctx, lbn, before, after)
}

// waitNodeReady waits for the new node only: others may be down.
func (a *addition) waitNodeReady(ctx context.Context) error {
	return poll(ctx, a.wait, 2*time.Second, func(ctx context.Context) (bool, error) {
		out, err := a.cp.kubectl(ctx, "get", "node", a.name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err == nil && strings.TrimSpace(out) != "True" {
			err = fmt.Errorf("node %s is not Ready (%q)", a.name, strings.TrimSpace(out))
		}
		return err == nil, err
	})
}

// undo removes what AddNode made, on a fresh context as rollback does.
func (a *addition) undo() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if a.lbBefore != nil {
		lbn := node{a.rt, a.live.lb.Name}
		if current, err := lbn.readFile(ctx, lb.ConfigPath); err != nil {
			a.log.Warn("reading the load balancer's config", "err", err)
		} else if err := rewriteBalancer(ctx, lbn, current, string(a.lbBefore)); err != nil {
			a.log.Warn("restoring the load balancer's config", "err", err)
		}
	}
	if a.joined {
		if _, err := (node{a.rt, a.name}).output(ctx, "kubeadm", "reset", "-f"); err != nil {
			a.log.Warn("kubeadm reset on the failed node", "name", a.name, "err", err)
		}
		if a.want.Role == config.ControlPlaneRole {
			if err := removeEtcdMember(ctx, a.cp, a.name, a.addresses[a.name].IPv4); err != nil {
				a.log.Warn("removing the failed node's etcd member", "name", a.name, "err", err)
			}
		}
		if _, err := a.cp.kubectl(ctx, "delete", "node", a.name, "--ignore-not-found"); err != nil {
			a.log.Warn("deleting the failed Kubernetes node", "name", a.name, "err", err)
		}
	}
	a.rollback()
}

// RemoveNodes removes nodes from a cluster: each is drained and deleted
// from Kubernetes and its container removed; a control plane is first
// taken out of the load balancer (so no new connection goes to it), then
// reset with kubeadm, which removes its etcd member. The load balancer
// itself, the last control plane and the control plane of a cluster
// without load balancer cannot be removed. Only WithProgress and
// WithLogger apply.
func RemoveNodes(ctx context.Context, rt runtime.Runtime, cluster string, names []string, opts ...CreateOption) error {
	o, err := nodeOptions(opts)
	if err != nil {
		return err
	}
	live, err := inspectCluster(ctx, rt, cluster)
	if err != nil {
		return err
	}
	var targets []runtime.NodeStatus
	var cps []string
	for _, name := range names {
		if live.lb != nil && name == live.lb.Name {
			return fmt.Errorf("%s is the load balancer of cluster %q, not a node: it goes with the cluster (`kinc delete cluster --name %s`)", name, cluster, cluster)
		}
		st, ok := live.node(name)
		if !ok {
			return fmt.Errorf("node %q is not in cluster %q (its nodes: %s)", name, cluster, strings.Join(live.names(), ", "))
		}
		if slices.ContainsFunc(targets, func(t runtime.NodeStatus) bool { return t.Name == name }) {
			continue
		}
		targets = append(targets, st)
		if isControlPlane(st) {
			cps = append(cps, name)
		}
	}
	var cfg *config.Cluster
	if len(cps) > 0 {
		if live.lb == nil {
			return fmt.Errorf("cluster %q has a single control plane and no load balancer: its control plane cannot be removed (delete the cluster instead)", cluster)
		}
		if len(live.controlPlaneAddresses(cps...)) == 0 {
			return fmt.Errorf("cannot remove %s: cluster %q would have no control plane left (delete the cluster instead)", strings.Join(cps, ", "), cluster)
		}
		// The balancer's config depends on the cluster's IP family.
		if cfg, err = live.config(ctx); err != nil {
			return err
		}
	}
	cp, err := live.admin(names...)
	if err != nil {
		return err
	}
	// Stopped nodes first: removing them never costs etcd a member that
	// is up, so each step keeps the majority the final state has.
	sort.SliceStable(targets, func(i, j int) bool {
		return targets[i].State != runtime.StateRunning && targets[j].State == runtime.StateRunning
	})
	if len(cps) > 0 {
		if err := checkQuorum(ctx, live, cp, cps); err != nil {
			return err
		}
		err := step(ctx, o.progress, "Updating load balancer", func(ctx context.Context) error {
			lbn := node{rt, live.lb.Name}
			before, err := lbn.readFile(ctx, lb.ConfigPath)
			if err != nil {
				return err
			}
			after, err := balancerConfig(cfg, live.controlPlaneAddresses(cps...))
			if err != nil {
				return err
			}
			return rewriteBalancer(ctx, lbn, before, after)
		})
		if err != nil {
			return err
		}
	}
	// One at a time: etcd shrinks one member at a time.
	for _, st := range targets {
		if err := step(ctx, o.progress, "Removing "+st.Name, func(ctx context.Context) error {
			return removeNode(ctx, o.log, cp, st, node{rt, st.Name})
		}); err != nil {
			return err
		}
	}
	return nil
}

// removeNode drains n, resets it (a control plane leaves etcd), deletes it
// from Kubernetes through control plane cp, and removes its container.
func removeNode(ctx context.Context, log *slog.Logger, cp node, st runtime.NodeStatus, n node) error {
	running := st.State == runtime.StateRunning
	if running {
		// A courtesy to its pods: the node goes whether they move or not.
		if out, err := cp.kubectl(ctx, "drain", n.name, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=60s"); err != nil {
			log.Warn("draining the node", "name", n.name, "err", err, "output", out)
		}
	}
	if isControlPlane(st) {
		if running {
			if _, err := n.output(ctx, "kubeadm", "reset", "-f"); err != nil {
				return fmt.Errorf("running kubeadm reset on %s: %w", n.name, err)
			}
		}
		// What reset left, or all of it when the node is stopped.
		if err := removeEtcdMember(ctx, cp, n.name, st.IPv4); err != nil {
			return err
		}
	}
	if _, err := cp.kubectl(ctx, "delete", "node", n.name, "--ignore-not-found"); err != nil {
		return fmt.Errorf("deleting Kubernetes node %s: %w", n.name, err)
	}
	if err := n.rt.DeleteNode(ctx, n.name); err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return fmt.Errorf("deleting container %s: %w", n.name, err)
	}
	return nil
}
