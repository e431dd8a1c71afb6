// Package kubeadm renders each node's kubeadm configuration for the
// Kubernetes version it runs, applies the user's patches to it (written for
// any kubeadm API version), and patches containerd's config.toml.
//
// The first control plane gets InitConfiguration, ClusterConfiguration,
// KubeletConfiguration and KubeProxyConfiguration; every other node a
// JoinConfiguration with the same two component configs, as kind has it
// (kubeadm join warns that it ignores them: a joining node takes the
// cluster's from their ConfigMaps, so patching them there does nothing).
// Documents are generic YAML trees, never Kubernetes' Go types, so one
// kinc reads and writes every kubeadm API version.
package kubeadm

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/kinc-dev/kinc/cluster/config"
)

// Paths and ports every node shares.
const (
	// CRISocket is containerd's socket inside a node.
	CRISocket = "unix:///run/containerd/containerd.sock"
	// APIServerPort is where every control plane's API server listens.
	APIServerPort = 6443
	// DNSDomain is the cluster's DNS domain, as kind has it.
	DNSDomain = "cluster.local"
	// DefaultToken is the bootstrap token kind uses: the API is reachable
	// only from the cluster's network and the host, and a fixed token
	// lets any node join without a round trip to the first control plane.
	DefaultToken = "abcdef.0123456789abcdef"
	// DiscoveryFile is where a joining node's config expects the
	// cluster's server and CA (kubeconfig.Discovery).
	DiscoveryFile = "/kind/discovery.conf"
)

// NewCertificateKey returns a key for `kubeadm init --upload-certs` and
// NodeInput.CertificateKey: 32 random bytes, hex, as kubeadm makes them.
func NewCertificateKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a certificate key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NodeInput is what one node's kubeadm config is made from. The caller
// decides everything that needs a runtime (addresses, cgroup driver).
type NodeInput struct {
	// Cluster is the whole config after defaults; its patches are applied.
	Cluster *config.Cluster
	// Node is this node's config; its patches are applied after the cluster's.
	Node config.Node
	// NodeName is the node container's name (its hostname too).
	NodeName string
	// NodeIP is the node's address on the cluster network; in a dual-stack
	// cluster "IPv4,IPv6" (the first one is advertised).
	NodeIP string
	// ControlPlaneEndpoint is host:port of the API for joins and
	// kubeconfigs: the first control plane's or the load balancer's name.
	ControlPlaneEndpoint string
	// KubernetesVersion of the node image, such as "v1.34.4".
	KubernetesVersion string
	// CgroupDriver is "systemd" or "cgroupfs", from the runtime's Info.
	CgroupDriver string
	// Rootless nodes leave the host's conntrack sysctls alone.
	Rootless bool
	// Token is the bootstrap token "abcdef.0123456789abcdef".
	Token string
	// CertificateKey, when set, lets control planes join with the
	// certificates uploaded by `kubeadm init --upload-certs`.
	CertificateKey string
	// FirstControlPlane is the node that runs `kubeadm init`.
	FirstControlPlane bool
	// Provider, when set, gives the kubelet provider-id
	// kind://PROVIDER/CLUSTER/NODE, as kind does.
	Provider string
	// UntaintControlPlane renders control planes with no taints, for
	// clusters without workers. Left false, kubeadm taints them and the
	// caller may remove the taint afterwards, as kind does.
	UntaintControlPlane bool
}

// Result is a node's final kubeadm config.
type Result struct {
	// YAML is the multi-document config for `kubeadm init|join --config`.
	YAML string
	// APIVersion is the kubeadm API it is written in, such as "kubeadm.k8s.io/v1beta4".
	APIVersion string
	// Warnings tell what a patch did not do: its kind and group match no
	// document kinc renders for any node, or a field it sets has no place
	// in the rendered API version. kind ignores such patches silently;
	// callers may log these. A patch of a document this node lacks (a
	// ClusterConfiguration patch on a joining node) is no warning.
	Warnings []string
}

// Config renders a node's kubeadm config and applies the cluster's
// patches, then the node's.
func Config(in NodeInput) (*Result, error) {
	if err := in.check(); err != nil {
		return nil, fmt.Errorf("rendering kubeadm config of node %q: %w", in.NodeName, err)
	}
	v, err := parseVersion(in.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	kv, err := kubeadmAPIVersion(v)
	if err != nil {
		return nil, err
	}
	r := renderer{in: in, v: v, apiVersion: kubeadmGroup + "/" + kv, listArgs: listArgs(kv)}
	var docs []*yaml.RNode
	for _, o := range r.documents() {
		docs = append(docs, yaml.NewRNode(node(o)))
	}
	warnings, err := applyPatches(docs, in)
	if err != nil {
		return nil, fmt.Errorf("patching kubeadm config of node %q: %w", in.NodeName, err)
	}
	text, err := joinDocuments(docs)
	if err != nil {
		return nil, fmt.Errorf("writing kubeadm config of node %q: %w", in.NodeName, err)
	}
	return &Result{YAML: text, APIVersion: r.apiVersion, Warnings: warnings}, nil
}

// check catches what a caller forgot; kubeadm would only fail later, in
// the node.
func (in NodeInput) check() error {
	switch {
	case in.Cluster == nil:
		return fmt.Errorf("no cluster config")
	case in.NodeName == "":
		return fmt.Errorf("no node name")
	case in.NodeIP == "":
		return fmt.Errorf("no node address")
	case in.Token == "":
		return fmt.Errorf("no bootstrap token")
	case in.ControlPlaneEndpoint == "" && !in.FirstControlPlane:
		return fmt.Errorf("no control-plane endpoint to join")
	}
	return nil
}

// applyPatches applies the cluster-wide patches, then the node's.
func applyPatches(docs []*yaml.RNode, in NodeInput) ([]string, error) {
	var warnings []string
	for _, set := range []struct {
		where    string
		merge    []string
		json6902 []config.PatchJSON6902
	}{
		{"kubeadmConfigPatches", in.Cluster.KubeadmConfigPatches, in.Cluster.KubeadmConfigPatchesJSON6902},
		{"nodes[" + in.NodeName + "].kubeadmConfigPatches", in.Node.KubeadmConfigPatches, in.Node.KubeadmConfigPatchesJSON6902},
	} {
		for i, p := range set.merge {
			w, err := mergePatch(docs, p)
			if err != nil {
				return nil, fmt.Errorf("applying %s[%d]: %w", set.where, i, err)
			}
			for _, s := range w {
				warnings = append(warnings, fmt.Sprintf("%s[%d]: %s", set.where, i, s))
			}
		}
		for i, p := range set.json6902 {
			w, err := json6902Patch(docs, p)
			if err != nil {
				return nil, fmt.Errorf("applying %sJSON6902[%d]: %w", set.where, i, err)
			}
			for _, s := range w {
				warnings = append(warnings, fmt.Sprintf("%sJSON6902[%d]: %s", set.where, i, s))
			}
		}
	}
	return warnings, nil
}

func joinDocuments(docs []*yaml.RNode) (string, error) {
	var b strings.Builder
	for i, d := range docs {
		s, err := d.String()
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// renderer holds what every document of one node needs.
type renderer struct {
	in         NodeInput
	v          version
	apiVersion string
	listArgs   bool
}

func (r renderer) documents() []obj {
	var docs []obj
	if r.in.FirstControlPlane {
		docs = append(docs, r.initConfiguration(), r.clusterConfiguration())
	} else {
		docs = append(docs, r.joinConfiguration())
	}
	docs = append(docs, r.kubeletConfiguration())
	if r.proxyMode() != config.NoneProxyMode {
		docs = append(docs, r.kubeProxyConfiguration())
	}
	return docs
}

// header starts a document. No metadata: these are not Kubernetes
// objects, and `kubeadm config validate` refuses the field.
func header(apiVersion, kind string) obj {
	return obj{{"apiVersion", apiVersion}, {"kind", kind}}
}

func (r renderer) ipFamily() config.IPFamily {
	if f := r.in.Cluster.Networking.IPFamily; f != "" {
		return f
	}
	return config.IPv4Family
}

func (r renderer) proxyMode() config.ProxyMode {
	if m := r.in.Cluster.Networking.KubeProxyMode; m != "" {
		return m
	}
	return config.IPTablesProxyMode
}

// advertiseAddress is the first of the node's addresses.
func (r renderer) advertiseAddress() string {
	first, _, _ := strings.Cut(r.in.NodeIP, ",")
	return strings.TrimSpace(first)
}

func (r renderer) isControlPlane() bool {
	return r.in.FirstControlPlane || r.in.Node.Role == config.ControlPlaneRole
}

// args writes extra arguments the way the kubeadm API version wants them:
// a map before v1beta4, a list of {name, value} sorted by name since.
func (r renderer) args(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	if !r.listArgs {
		return m
	}
	var list []any
	for _, k := range sortedKeys(m) {
		list = append(list, obj{{"name", k}, {"value", m[k]}})
	}
	return list
}

// componentGates are the cluster's feature gates that Kubernetes
// components take; kubeadmGates the ones kubeadm itself knows.
func (r renderer) componentGates() map[string]bool {
	gates := map[string]bool{}
	for k, v := range r.in.Cluster.FeatureGates {
		if !kubeadmOnlyGates[k] {
			gates[k] = v
		}
	}
	return gates
}

func (r renderer) kubeadmGates() map[string]bool {
	gates := map[string]bool{}
	for k, v := range r.in.Cluster.FeatureGates {
		if kubeadmOnlyGates[k] || sharedGates[k] {
			gates[k] = v
		}
	}
	// With this gate (on by default in v1.33 and v1.34) a joining control
	// plane's kubelet bootstraps through its own API server, which is up
	// only once the node's etcd member has joined; through the load
	// balancer, as before v1.33, the node registers and starts its pods
	// while etcd joins, which makes HA creates about 5 s faster. Left to
	// the user's setting, and to later versions, where it cannot be off.
	if _, set := gates["ControlPlaneKubeletLocalMode"]; !set && len(r.in.Cluster.ControlPlanes()) > 1 && r.v.atLeast(33) && !r.v.atLeast(35) {
		gates["ControlPlaneKubeletLocalMode"] = false
	}
	return gates
}

// kubeadmOnlyGates are gates of kubeadm itself, over its releases: a
// component given one of them would refuse to start, and kubeadm refuses
// any gate it does not know, so the two sets must not mix.
var kubeadmOnlyGates = map[string]bool{
	"PublicKeysECDSA":                  true,
	"RootlessControlPlane":             true,
	"UnversionedKubeletConfigMap":      true,
	"EtcdLearnerMode":                  true,
	"UpgradeAddonsBeforeControlPlane":  true,
	"WaitForAllControlPlaneComponents": true,
	"ControlPlaneKubeletLocalMode":     true,
	"NodeLocalCRISocket":               true,
}

// sharedGates are known to both kubeadm and the components.
var sharedGates = map[string]bool{"IPv6DualStack": true}

func gatesString(gates map[string]bool) string {
	var s []string
	for _, k := range sortedKeys(gates) {
		s = append(s, fmt.Sprintf("%s=%t", k, gates[k]))
	}
	return strings.Join(s, ",")
}

func gatesObj(gates map[string]bool) obj {
	o := obj{}
	for _, k := range sortedKeys(gates) {
		o = append(o, field{k, gates[k]})
	}
	return o
}

func (r renderer) nodeRegistration() obj {
	kubelet := map[string]string{"node-ip": r.in.NodeIP}
	if r.in.Provider != "" {
		kubelet["provider-id"] = fmt.Sprintf("kind://%s/%s/%s", r.in.Provider, r.in.Cluster.Name, r.in.NodeName)
	}
	if labels := r.in.Node.Labels; len(labels) > 0 {
		var s []string
		for _, k := range sortedKeys(labels) {
			s = append(s, k+"="+labels[k])
		}
		kubelet["node-labels"] = strings.Join(s, ",")
	}
	o := obj{{"criSocket", CRISocket}, {"name", r.in.NodeName}}.set("kubeletExtraArgs", r.args(kubelet))
	if r.isControlPlane() && r.in.UntaintControlPlane {
		o = o.set("taints", []any{})
	}
	return o
}

func (r renderer) localAPIEndpoint() obj {
	return obj{{"advertiseAddress", r.advertiseAddress()}, {"bindPort", APIServerPort}}
}

func (r renderer) initConfiguration() obj {
	o := header(r.apiVersion, "InitConfiguration").
		set("bootstrapTokens", []any{obj{{"token", r.in.Token}}}).
		set("localAPIEndpoint", r.localAPIEndpoint()).
		set("nodeRegistration", r.nodeRegistration())
	if r.in.CertificateKey != "" {
		o = o.set("certificateKey", r.in.CertificateKey)
	}
	// skipPhases exists since v1beta3; with v1beta2 the caller passes
	// --skip-phases itself.
	if r.proxyMode() == config.NoneProxyMode && r.v.atLeast(23) {
		o = o.set("skipPhases", []string{"addon/kube-proxy"})
	}
	return o
}

func (r renderer) joinConfiguration() obj {
	o := header(r.apiVersion, "JoinConfiguration")
	if r.isControlPlane() {
		cp := obj{{"localAPIEndpoint", r.localAPIEndpoint()}}
		if r.in.CertificateKey != "" {
			cp = cp.set("certificateKey", r.in.CertificateKey)
		}
		o = o.set("controlPlane", cp)
	}
	// The caller writes DiscoveryFile (the cluster's server and CA) before
	// the join; the token then only authenticates the kubelet's bootstrap.
	return o.set("nodeRegistration", r.nodeRegistration()).
		set("discovery", obj{
			{"file", obj{{"kubeConfigPath", DiscoveryFile}}},
			{"tlsBootstrapToken", r.in.Token},
		})
}

func (r renderer) clusterConfiguration() obj {
	c := r.in.Cluster
	ipv6 := r.ipFamily() == config.IPv6Family
	gates := gatesString(r.componentGates())

	sans := []string{"localhost", "127.0.0.1"}
	if r.ipFamily() != config.IPv4Family {
		sans = append(sans, "::1")
	}
	if a := c.Networking.APIServerAddress; a != "" && !contains(sans, a) {
		sans = append(sans, a)
	}

	apiServer := map[string]string{}
	controllerManager := map[string]string{"enable-hostpath-provisioner": "true"}
	scheduler := map[string]string{}
	if gates != "" {
		apiServer["feature-gates"] = gates
		controllerManager["feature-gates"] = gates
		scheduler["feature-gates"] = gates
	}
	if len(c.RuntimeConfig) > 0 {
		var s []string
		for _, k := range sortedKeys(c.RuntimeConfig) {
			s = append(s, k+"="+c.RuntimeConfig[k])
		}
		apiServer["runtime-config"] = strings.Join(s, ",")
	}
	if ipv6 {
		// The defaults are IPv4 addresses that an IPv6-only node lacks.
		controllerManager["bind-address"] = "::"
		scheduler["bind-address"] = "::1"
	}

	networking := obj{}.
		set("podSubnet", nonEmpty(c.Networking.PodSubnet)).
		set("serviceSubnet", nonEmpty(c.Networking.ServiceSubnet)).
		set("dnsDomain", DNSDomain)

	return header(r.apiVersion, "ClusterConfiguration").
		set("kubernetesVersion", r.in.KubernetesVersion).
		set("clusterName", c.Name).
		set("controlPlaneEndpoint", r.in.ControlPlaneEndpoint).
		set("featureGates", gatesObj(r.kubeadmGates())).
		set("networking", networking).
		set("etcd", r.etcd()).
		set("apiServer", obj{{"certSANs", sans}}.set("extraArgs", r.args(apiServer))).
		set("controllerManager", obj{}.set("extraArgs", r.args(controllerManager))).
		set("scheduler", obj{}.set("extraArgs", r.args(scheduler)))
}

// etcd is the stacked etcd's settings. With more than one control plane,
// etcd's strict reconfiguration check is off: with it, etcd refuses to
// add a member until it has been connected to every voting member for
// 5 s, so each control plane joining after the second waited that long
// after the previous one's promotion. The check's other guard, refusing
// a member removal that loses quorum, kinc makes itself before removing
// a control plane (checkQuorum in cluster/nodes.go).
func (r renderer) etcd() obj {
	if len(r.in.Cluster.ControlPlanes()) < 2 {
		return nil
	}
	return obj{{"local", obj{}.set("extraArgs", r.args(map[string]string{"strict-reconfig-check": "false"}))}}
}

func (r renderer) kubeletConfiguration() obj {
	gates := r.componentGates()
	if r.in.Rootless && r.v.atLeast(22) {
		// Lets kubelet tolerate the sysctls and limits a user namespace denies.
		gates["KubeletInUserNamespace"] = true
	}
	o := header(kubeletAPIVersion, "KubeletConfiguration").
		set("cgroupDriver", r.cgroupDriver())
	if r.v.atLeast(27) {
		o = o.set("containerRuntimeEndpoint", CRISocket)
	}
	o = o.set("failSwapOn", false)
	if r.v.atLeast(31) {
		// Without it kubelet 1.35+ refuses cgroup v1 hosts; on v2 it is moot.
		o = o.set("failCgroupV1", false)
	}
	if r.ipFamily() == config.IPv6Family {
		// The API server reaches kubelet on the node's IPv6 address; the
		// health port stays on 127.0.0.1, which every node has.
		o = o.set("address", "::")
	}
	// The node's disk is the host's: kubelet must not evict or collect
	// images because the host is full, as kind decided.
	return o.set("imageGCHighThresholdPercent", 100).
		set("evictionHard", obj{
			{"nodefs.available", "0%"},
			{"nodefs.inodesFree", "0%"},
			{"imagefs.available", "0%"},
		}).
		set("featureGates", gatesObj(gates))
}

func (r renderer) cgroupDriver() string {
	if r.in.CgroupDriver != "" {
		return r.in.CgroupDriver
	}
	return "systemd"
}

func (r renderer) kubeProxyConfiguration() obj {
	mode := r.proxyMode()
	// maxPerCore 0 leaves nf_conntrack_max, a host-wide sysctl, alone.
	conntrack := obj{{"maxPerCore", 0}}
	if mode == config.NFTablesProxyMode && !r.in.Rootless && r.v.atLeast(29) {
		conntrack = conntrack.set("tcpBeLiberal", true)
	}
	if r.in.Rootless {
		// A user namespace may not write these sysctls at all.
		conntrack = conntrack.set("tcpEstablishedTimeout", "0s").set("tcpCloseWaitTimeout", "0s")
	}
	return header(kubeProxyAPIVersion, "KubeProxyConfiguration").
		set("mode", string(mode)).
		set("featureGates", gatesObj(r.componentGates())).
		set("iptables", obj{{"minSyncPeriod", "1s"}}).
		set("conntrack", conntrack)
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s || (net.ParseIP(e) != nil && net.ParseIP(e).Equal(net.ParseIP(s))) {
			return true
		}
	}
	return false
}
