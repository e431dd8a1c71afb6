package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"text/template"
	"time"
)

// Manifests a node image may carry (kind's layout). When the image has no
// CNI manifest, kinc connects pods itself (see staticCNI).
const (
	cniManifest     = "/kind/manifests/default-cni.yaml"
	storageManifest = "/kind/manifests/default-storage.yaml"
	cniConfPath     = "/etc/cni/net.d/10-kinc.conflist"
)

// defaultStorageClass makes PersistentVolumeClaims bind without any image:
// kube-controller-manager's host-path provisioner (enabled in the kubeadm
// config) serves it. Used when the node image ships no storage manifest.
const defaultStorageClass = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
`

// hasFile tells whether the node has a regular file at p.
func (n node) hasFile(ctx context.Context, p string) bool {
	_, err := n.output(ctx, "test", "-f", p)
	return err == nil
}

// installCNI applies the image's CNI manifest (rendered with the pod
// subnet, as kind's images expect), or configures kinc's static CNI on the
// first control plane.
func (c *creation) installCNI(ctx context.Context) error {
	cp := c.firstControlPlane()
	if !cp.hasFile(ctx, cniManifest) {
		c.staticCNI = true
		return c.configureNodeCNI(ctx, cp)
	}
	raw, err := cp.readFile(ctx, cniManifest)
	if err != nil {
		return err
	}
	manifest, err := renderCNI(raw, c.cniValues())
	if err != nil {
		return err
	}
	return c.apply(ctx, manifest)
}

// cniValues are the fields a CNI manifest template may use.
type cniValues struct {
	PodSubnet                string // as the config says: one CIDR, or v4,v6
	PodSubnetV4, PodSubnetV6 string // empty when the cluster lacks the family
	// APIServerHost and APIServerPort reach the API from any node without
	// a Service (so without kube-proxy): kubeadm's controlPlaneEndpoint.
	APIServerHost string
	APIServerPort int
}

func (c *creation) cniValues() cniValues {
	v := cniValues{PodSubnet: c.cfg.Networking.PodSubnet, APIServerPort: APIServerPort}
	for _, s := range strings.Split(v.PodSubnet, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		switch {
		case err != nil: // validated on load
		case p.Addr().Is4():
			v.PodSubnetV4 = p.String()
		default:
			v.PodSubnetV6 = p.String()
		}
	}
	v.APIServerHost = c.firstControlPlane().name
	if c.plan.LoadBalancer != nil {
		v.APIServerHost = c.plan.LoadBalancer.Name
	}
	return v
}

// renderCNI fills a CNI manifest template.
func renderCNI(raw []byte, v cniValues) ([]byte, error) {
	tmpl, err := template.New("cni").Option("missingkey=error").Parse(string(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", cniManifest, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, v); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", cniManifest, err)
	}
	return out.Bytes(), nil
}

func (c *creation) installStorage(ctx context.Context) error {
	cp := c.firstControlPlane()
	if !cp.hasFile(ctx, storageManifest) {
		return c.apply(ctx, []byte(defaultStorageClass))
	}
	_, err := c.kubectl(ctx, "apply", "-f", storageManifest)
	return err
}

// apply runs kubectl apply on a manifest.
func (c *creation) apply(ctx context.Context, manifest []byte) error {
	if err := c.firstControlPlane().runInput(ctx, manifest, "kubectl", "--kubeconfig="+adminConfPath, "apply", "-f", "-"); err != nil {
		return fmt.Errorf("applying manifest: %w", err)
	}
	return nil
}

// podCIDR waits for the controller manager to give the node its pod range.
func (c *creation) podCIDR(ctx context.Context, name string) (string, error) {
	var cidr string
	err := poll(ctx, time.Minute, time.Second, func(ctx context.Context) (bool, error) {
		out, err := c.kubectl(ctx, "get", "node", name, "-o", "jsonpath={.spec.podCIDR}")
		cidr = strings.TrimSpace(out)
		if err == nil && cidr == "" {
			err = fmt.Errorf("node %s has no pod CIDR yet", name)
		}
		return err == nil, err
	})
	return cidr, err
}

// configureNodeCNI writes kinc's static CNI config on a node: a bridge
// for the node's pod range, with host-local addresses and port mapping.
// Cross-node routes come from routePods. Images with their own CNI
// manifest skip this.
func (c *creation) configureNodeCNI(ctx context.Context, n node) error {
	if !c.staticCNI {
		return nil
	}
	cidr, err := c.podCIDR(ctx, n.name)
	if err != nil {
		return err
	}
	conf, err := bridgeConflist(cidr)
	if err != nil {
		return err
	}
	if err := n.writeFile(ctx, cniConfPath, conf, 0o644); err != nil {
		return err
	}
	// Pods reach the outside world through the node's address; traffic
	// between pods keeps its source.
	sub := c.cfg.Networking.PodSubnet
	rule := fmt.Sprintf("iptables -t nat -C POSTROUTING -s %[1]s ! -d %[1]s -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -s %[1]s ! -d %[1]s -j MASQUERADE", strings.Split(sub, ",")[0])
	_, err = n.output(ctx, "sh", "-c", rule)
	return err
}

// bridgeConflist is the CNI config for one node's pod range.
func bridgeConflist(podCIDR string) ([]byte, error) {
	if _, err := netip.ParsePrefix(podCIDR); err != nil {
		return nil, fmt.Errorf("pod CIDR %q: %w", podCIDR, err)
	}
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "kinc",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "kinc0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": []any{[]any{map[string]any{"subnet": podCIDR}}},
					"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// routePods gives every node a route to every other node's pod range over
// the cluster network.
func (c *creation) routePods(ctx context.Context) error {
	cidrs := map[string]string{}
	for _, np := range c.plan.Nodes {
		cidr, err := c.podCIDR(ctx, np.Name)
		if err != nil {
			return err
		}
		cidrs[np.Name] = cidr
	}
	return forEach(ctx, c.plan.Nodes, func(ctx context.Context, np NodePlan) error {
		n := node{c.rt, np.Name}
		for other, cidr := range cidrs {
			if other == np.Name {
				continue
			}
			if _, err := n.output(ctx, "ip", "route", "replace", cidr, "via", c.addresses[other].IPv4); err != nil {
				return fmt.Errorf("routing %s via %s on %s: %w", cidr, other, np.Name, err)
			}
		}
		return nil
	})
}
