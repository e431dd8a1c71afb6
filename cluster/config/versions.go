package config

import (
	"fmt"
	"strconv"
	"strings"
)

// The apiVersion and kind pairs a config file may have. Only v1alpha4 is
// the current form; the older two are converted to it on load.
const (
	APIVersionV1Alpha4 = "kind.x-k8s.io/v1alpha4"
	APIVersionV1Alpha3 = "kind.sigs.k8s.io/v1alpha3"
	APIVersionV1Alpha2 = "kind.sigs.k8s.io/v1alpha2"
)

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// version is one accepted document type: how to decode it and how to turn
// it into the internal Cluster.
type version struct {
	apiVersion, kind string
	// newDoc returns a pointer to a fresh document of this version.
	newDoc func() any
	// convert turns the decoded document into a Cluster and moves the
	// lines in src from the document's field paths to the Cluster's.
	convert func(doc any, src *source) (*Cluster, error)
}

var versions = []version{
	{APIVersionV1Alpha4, "Cluster", func() any { return &v1alpha4Cluster{} }, convertV1Alpha4},
	{APIVersionV1Alpha3, "Cluster", func() any { return &v1alpha3Cluster{} }, convertV1Alpha3},
	{APIVersionV1Alpha2, "Config", func() any { return &v1alpha2Config{} }, convertV1Alpha2},
}

func acceptedTypes() string {
	var s []string
	for _, v := range versions {
		s = append(s, fmt.Sprintf("apiVersion: %s with kind: %s", v.apiVersion, v.kind))
	}
	return strings.Join(s, "; ")
}

// v1alpha4Cluster is the current form: the internal Cluster, typed.
type v1alpha4Cluster struct {
	typeMeta
	Cluster
}

func convertV1Alpha4(doc any, _ *source) (*Cluster, error) {
	c := doc.(*v1alpha4Cluster).Cluster
	return &c, nil
}

// v1alpha3 as kind v0.4 to v0.7 read it, plus the fields kinc also
// accepts there (node-level patches, containerdConfigPatches). Note the
// spelling kubeadmConfigPatchesJson6902.
type v1alpha3Cluster struct {
	typeMeta
	Nodes                        []v1alpha3Node     `json:"nodes"`
	Networking                   v1alpha3Networking `json:"networking"`
	KubeadmConfigPatches         []string           `json:"kubeadmConfigPatches"`
	KubeadmConfigPatchesJSON6902 []legacyPatch      `json:"kubeadmConfigPatchesJson6902"`
	ContainerdConfigPatches      []string           `json:"containerdConfigPatches"`
}

type v1alpha3Node struct {
	Role                         NodeRole            `json:"role"`
	Image                        string              `json:"image"`
	ExtraMounts                  []legacyMount       `json:"extraMounts"`
	ExtraPortMappings            []legacyPortMapping `json:"extraPortMappings"`
	KubeadmConfigPatches         []string            `json:"kubeadmConfigPatches"`
	KubeadmConfigPatchesJSON6902 []legacyPatch       `json:"kubeadmConfigPatchesJson6902"`
}

type v1alpha3Networking struct {
	IPFamily          IPFamily `json:"ipFamily"`
	APIServerPort     int32    `json:"apiServerPort"`
	APIServerAddress  string   `json:"apiServerAddress"`
	PodSubnet         string   `json:"podSubnet"`
	ServiceSubnet     string   `json:"serviceSubnet"`
	DisableDefaultCNI bool     `json:"disableDefaultCNI"`
}

// legacyPatch had a name and namespace that kind always ignored; they are
// accepted and dropped.
type legacyPatch struct {
	Group     string `json:"group"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Patch     string `json:"patch"`
}

type legacyMount struct {
	ContainerPath  string            `json:"containerPath"`
	HostPath       string            `json:"hostPath"`
	ReadOnly       bool              `json:"readOnly"`
	SelinuxRelabel bool              `json:"selinuxRelabel"`
	Propagation    legacyPropagation `json:"propagation"`
}

type legacyPortMapping struct {
	ContainerPort int32          `json:"containerPort"`
	HostPort      int32          `json:"hostPort"`
	ListenAddress string         `json:"listenAddress"`
	Protocol      legacyProtocol `json:"protocol"`
}

// legacyPropagation and legacyProtocol were CRI enums, written either by
// name or by number in older configs.
type legacyPropagation MountPropagation

func (p *legacyPropagation) decodeScalar(s string) error {
	names := []MountPropagation{MountPropagationNone, MountPropagationHostToContainer, MountPropagationBidirectional}
	v, err := legacyEnum(MountPropagation(s), names)
	if err != nil {
		return fmt.Errorf("unknown propagation %q; use None, HostToContainer or Bidirectional", s)
	}
	*p = legacyPropagation(v)
	return nil
}

type legacyProtocol PortProtocol

func (p *legacyProtocol) decodeScalar(s string) error {
	names := []PortProtocol{PortProtocolTCP, PortProtocolUDP, PortProtocolSCTP}
	v, err := legacyEnum(PortProtocol(strings.ToUpper(s)), names)
	if err != nil {
		return fmt.Errorf("unknown protocol %q; use TCP, UDP or SCTP", s)
	}
	*p = legacyProtocol(v)
	return nil
}

// legacyEnum accepts a name among names or its index.
func legacyEnum[T ~string](s T, names []T) (T, error) {
	for _, n := range names {
		if s == n {
			return n, nil
		}
	}
	if i, err := strconv.Atoi(string(s)); err == nil && i >= 0 && i < len(names) {
		return names[i], nil
	}
	return "", fmt.Errorf("unknown value %q", s)
}

func (m legacyMount) convert() Mount {
	return Mount{
		ContainerPath:  m.ContainerPath,
		HostPath:       m.HostPath,
		ReadOnly:       m.ReadOnly,
		SelinuxRelabel: m.SelinuxRelabel,
		Propagation:    MountPropagation(m.Propagation),
	}
}

func (p legacyPortMapping) convert() PortMapping {
	return PortMapping{
		ContainerPort: p.ContainerPort,
		HostPort:      p.HostPort,
		ListenAddress: p.ListenAddress,
		Protocol:      PortProtocol(p.Protocol),
	}
}

func (p legacyPatch) convert() PatchJSON6902 {
	return PatchJSON6902{Group: p.Group, Version: p.Version, Kind: p.Kind, Patch: p.Patch}
}

func convertSlice[S, T any](in []S, f func(S) T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}

func convertV1Alpha3(doc any, src *source) (*Cluster, error) {
	in := doc.(*v1alpha3Cluster)
	c := &Cluster{
		Networking: Networking{
			IPFamily:          in.Networking.IPFamily,
			APIServerPort:     in.Networking.APIServerPort,
			APIServerAddress:  in.Networking.APIServerAddress,
			PodSubnet:         in.Networking.PodSubnet,
			ServiceSubnet:     in.Networking.ServiceSubnet,
			DisableDefaultCNI: in.Networking.DisableDefaultCNI,
		},
		KubeadmConfigPatches:         in.KubeadmConfigPatches,
		KubeadmConfigPatchesJSON6902: convertSlice(in.KubeadmConfigPatchesJSON6902, legacyPatch.convert),
		ContainerdConfigPatches:      in.ContainerdConfigPatches,
	}
	for _, n := range in.Nodes {
		c.Nodes = append(c.Nodes, Node{
			Role:                         n.Role,
			Image:                        n.Image,
			ExtraMounts:                  convertSlice(n.ExtraMounts, legacyMount.convert),
			ExtraPortMappings:            convertSlice(n.ExtraPortMappings, legacyPortMapping.convert),
			KubeadmConfigPatches:         n.KubeadmConfigPatches,
			KubeadmConfigPatchesJSON6902: convertSlice(n.KubeadmConfigPatchesJSON6902, legacyPatch.convert),
		})
	}
	src.lines = renameJSON6902(src.lines)
	return c, nil
}

// renameJSON6902 moves lines from the old spelling of the field to the new.
func renameJSON6902(lines map[string]int) map[string]int {
	out := make(map[string]int, len(lines))
	for p, l := range lines {
		out[strings.ReplaceAll(p, "kubeadmConfigPatchesJson6902", "kubeadmConfigPatchesJSON6902")] = l
	}
	return out
}

// v1alpha2 as kind v0.1 to v0.3 read it: kind Config, nodes with replicas.
type v1alpha2Config struct {
	typeMeta
	Nodes []v1alpha2Node `json:"nodes"`
}

type v1alpha2Node struct {
	Replicas                     *int32        `json:"replicas"`
	Role                         NodeRole      `json:"role"`
	Image                        string        `json:"image"`
	ExtraMounts                  []legacyMount `json:"extraMounts"`
	KubeadmConfigPatches         []string      `json:"kubeadmConfigPatches"`
	KubeadmConfigPatchesJSON6902 []legacyPatch `json:"kubeadmConfigPatchesJson6902"`
}

// v1alpha2 had the load balancer as a node; it is implicit now.
const v1alpha2LoadBalancerRole NodeRole = "external-load-balancer"

// convertV1Alpha2 expands replicas into nodes and, as kind did, makes the
// first control plane's kubeadm patches cluster-wide (in v1alpha2 they were
// the ones that shaped the cluster's kubeadm config). Unlike kind, the API
// server keeps the safe default address 127.0.0.1 rather than 0.0.0.0.
func convertV1Alpha2(doc any, src *source) (*Cluster, error) {
	in := doc.(*v1alpha2Config)
	c := &Cluster{}
	lines := map[string]int{}
	for p, l := range src.lines {
		if !strings.HasPrefix(p, "nodes[") {
			lines[p] = l
		}
	}
	firstCP := true
	for j, n := range in.Nodes {
		from := indexPath("nodes", j)
		replicas := 1
		if n.Replicas != nil {
			replicas = int(*n.Replicas)
		}
		if replicas < 0 {
			return nil, src.errorf(from+".replicas", "replicas must be 0 or more, got %d", replicas)
		}
		if n.Role == v1alpha2LoadBalancerRole || replicas == 0 {
			continue
		}
		node := Node{
			Role:                         n.Role,
			Image:                        n.Image,
			ExtraMounts:                  convertSlice(n.ExtraMounts, legacyMount.convert),
			KubeadmConfigPatches:         n.KubeadmConfigPatches,
			KubeadmConfigPatchesJSON6902: convertSlice(n.KubeadmConfigPatchesJSON6902, legacyPatch.convert),
		}
		if firstCP && (n.Role == ControlPlaneRole || n.Role == "") {
			firstCP = false
			moveV1Alpha2Patches(c, &node, from, src, lines)
		}
		for r := 0; r < replicas; r++ {
			to := indexPath("nodes", len(c.Nodes))
			for k, v := range src.renamePrefix(from, to) {
				lines[k] = v
			}
			cp := node
			cp.ExtraMounts = append([]Mount(nil), node.ExtraMounts...)
			c.Nodes = append(c.Nodes, cp)
		}
	}
	src.lines = renameJSON6902(lines)
	return c, nil
}

// moveV1Alpha2Patches lifts a node's patches to the cluster level.
func moveV1Alpha2Patches(c *Cluster, n *Node, from string, src *source, lines map[string]int) {
	for _, f := range []string{"kubeadmConfigPatches", "kubeadmConfigPatchesJson6902"} {
		for k, v := range src.renamePrefix(from+"."+f, f) {
			lines[k] = v
		}
	}
	c.KubeadmConfigPatches = n.KubeadmConfigPatches
	c.KubeadmConfigPatchesJSON6902 = n.KubeadmConfigPatchesJSON6902
	n.KubeadmConfigPatches, n.KubeadmConfigPatchesJSON6902 = nil, nil
}
