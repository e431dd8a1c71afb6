package containerd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	gocni "github.com/containerd/go-cni"

	"github.com/kinc-dev/kinc/runtime"
)

// cniLeaseDir is where host-local keeps its leases, one folder per network.
const cniLeaseDir = "/var/lib/cni/networks"

// EnsureNetwork creates a CNI bridge network, or returns the existing one of
// that name unchanged.
func (r *Runtime) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) (runtime.Network, error) {
	if err := validName(spec.Name); err != nil {
		return runtime.Network{}, fmt.Errorf("creating network: %w", err)
	}
	unlock, err := r.state.lock()
	if err != nil {
		return runtime.Network{}, err
	}
	defer unlock()

	if n, err := r.state.readNetwork(spec.Name); err == nil {
		return n.network(), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return runtime.Network{}, fmt.Errorf("reading network %q: %w", spec.Name, err)
	}

	// Subnets are unique across namespaces, so the choice is made under a
	// lock they share.
	unlockAll, err := lockFile(filepath.Join(filepath.Dir(r.state.dir), "networks.lock"))
	if err != nil {
		return runtime.Network{}, err
	}
	defer unlockAll()
	kinc, err := r.kincPrefixes()
	if err != nil {
		return runtime.Network{}, err
	}
	n := networkState{
		Name:    spec.Name,
		CNIName: cniName(r.namespace, spec.Name),
		Bridge:  bridgeName(r.namespace, spec.Name),
		Labels:  spec.Labels,
	}
	v4, err := chooseSubnet(spec.Subnet, runtime.PoolV4, runtime.SubnetBitsV4, kinc, true)
	if err != nil {
		return runtime.Network{}, fmt.Errorf("creating network %q: %w", spec.Name, err)
	}
	n.Subnet, n.Gateway = v4.String(), gatewayOf(v4).String()
	if spec.IPv6 || spec.SubnetV6 != "" {
		v6, err := chooseSubnet(spec.SubnetV6, runtime.PoolV6, runtime.SubnetBitsV6, kinc, false)
		if err != nil {
			return runtime.Network{}, fmt.Errorf("creating network %q: %w", spec.Name, err)
		}
		n.SubnetV6 = v6.String()
	}
	conf, err := renderConflist(n)
	if err != nil {
		return runtime.Network{}, err
	}
	if err := writeFileAtomic(r.state.conflistFile(n.Name), conf, 0o644); err != nil {
		return runtime.Network{}, fmt.Errorf("creating network %q: %w", spec.Name, err)
	}
	if err := r.state.writeNetwork(n); err != nil {
		return runtime.Network{}, fmt.Errorf("creating network %q: %w", spec.Name, err)
	}
	return n.network(), nil
}

func (n networkState) network() runtime.Network {
	return runtime.Network{Name: n.Name, Subnet: n.Subnet, Gateway: n.Gateway, SubnetV6: n.SubnetV6}
}

// chooseSubnet parses the asked subnet, which must not overlap another kinc
// network, or picks one from pool that also avoids the host's routes.
func chooseSubnet(asked string, pool netip.Prefix, bits int, kinc []netip.Prefix, v4 bool) (netip.Prefix, error) {
	if asked == "" {
		return runtime.PickSubnet(pool, bits, append(runtime.HostPrefixes(), kinc...))
	}
	p, err := netip.ParsePrefix(asked)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parsing subnet %q: %w: %w", asked, runtime.ErrInvalid, err)
	}
	if p.Addr().Is4() != v4 {
		return netip.Prefix{}, fmt.Errorf("subnet %q: wrong address family: %w", asked, runtime.ErrInvalid)
	}
	p = p.Masked()
	for _, k := range kinc {
		if k.Addr().Is4() == v4 && k.Overlaps(p) {
			return netip.Prefix{}, fmt.Errorf("subnet %s overlaps kinc network subnet %s: %w", p, k, runtime.ErrAlreadyExists)
		}
	}
	return p, nil
}

// kincPrefixes are the subnets of every kinc containerd network, whatever
// its namespace.
func (r *Runtime) kincPrefixes() ([]netip.Prefix, error) {
	var taken []netip.Prefix
	dirs, err := filepath.Glob(filepath.Join(filepath.Dir(r.state.dir), "*", "networks"))
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		nets, err := listNetworks(d)
		if err != nil {
			return nil, fmt.Errorf("listing networks in %q: %w", d, err)
		}
		for _, n := range nets {
			for _, s := range []string{n.Subnet, n.SubnetV6} {
				if p, err := netip.ParsePrefix(s); err == nil {
					taken = append(taken, p.Masked())
				}
			}
		}
	}
	return taken, nil
}

// DeleteNetwork removes a network that no node uses any more, with its
// bridge and host-local's leases folder.
func (r *Runtime) DeleteNetwork(ctx context.Context, name string) error {
	unlock, err := r.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	n, err := r.state.readNetwork(name)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting network %q: %w", name, runtime.ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("deleting network %q: %w", name, err)
	}
	nodes, err := r.state.nodes()
	if err != nil {
		return fmt.Errorf("deleting network %q: %w", name, err)
	}
	var users []string
	for _, node := range nodes {
		if node.Network != name {
			continue
		}
		// State left by a container removed behind kinc's back (ctr rm)
		// must not pin the network forever.
		if _, err := r.client.LoadContainer(r.ctx(ctx), node.Name); isNotFound(err) {
			if err := r.detachLocked(ctx, node.Name); err != nil {
				return fmt.Errorf("deleting network %q: releasing stale node %q: %w", name, node.Name, err)
			}
			if err := os.RemoveAll(r.state.nodeDir(node.Name)); err != nil {
				return fmt.Errorf("deleting network %q: %w", name, err)
			}
			continue
		}
		users = append(users, node.Name)
	}
	if len(users) > 0 {
		return fmt.Errorf("deleting network %q: still used by %s", name, strings.Join(users, ", "))
	}
	if err := deleteLink(n.Bridge); err != nil {
		return fmt.Errorf("deleting bridge %q of network %q: %w", n.Bridge, name, err)
	}
	if err := os.RemoveAll(filepath.Join(cniLeaseDir, n.CNIName)); err != nil {
		return fmt.Errorf("deleting network %q: %w", name, err)
	}
	for _, f := range []string{r.state.conflistFile(name), r.state.networkFile(name)} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("deleting network %q: %w", name, err)
		}
	}
	return nil
}

// cniFor loads a network's config into a go-cni instance, plus loopback so
// that the node's lo comes up too. The network goes first: go-cni names
// interfaces by load order, and it must be eth0. A node without a network
// gets loopback alone.
func (r *Runtime) cniFor(name string) (gocni.CNI, networkState, error) {
	var n networkState
	load := []gocni.Opt{gocni.WithLoNetwork}
	if name != "" {
		var err error
		n, err = r.state.readNetwork(name)
		if errors.Is(err, os.ErrNotExist) {
			return nil, n, fmt.Errorf("network %q: %w", name, runtime.ErrNotFound)
		} else if err != nil {
			return nil, n, fmt.Errorf("reading network %q: %w", name, err)
		}
		load = []gocni.Opt{gocni.WithConfListFile(r.state.conflistFile(name)), gocni.WithLoNetwork}
	}
	c, err := gocni.New(
		gocni.WithPluginDir(r.cniBinDirs),
		gocni.WithMinNetworkCount(len(load)),
		gocni.WithInterfacePrefix("eth"))
	if err != nil {
		return nil, n, fmt.Errorf("setting up CNI for network %q: %w", name, err)
	}
	if err := c.Load(load...); err != nil {
		return nil, n, fmt.Errorf("loading CNI config of network %q: %w", name, err)
	}
	return c, n, nil
}

func validName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\\ \t\n") || name == "." || name == ".." {
		return fmt.Errorf("name %q: %w", name, runtime.ErrInvalid)
	}
	return nil
}
