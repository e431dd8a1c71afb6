package podman

import (
	"context"
	"errors"
	"fmt"

	nettypes "github.com/containers/common/libnetwork/types"
	"github.com/containers/podman/v4/pkg/bindings/network"

	"github.com/kinc-dev/kinc/runtime"
)

// EnsureNetwork creates a bridge network with DNS, or returns the existing
// one of that name unchanged.
func (r *Runtime) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) (runtime.Network, error) {
	if spec.Name == "" {
		return runtime.Network{}, fmt.Errorf("network without a name: %w", runtime.ErrInvalid)
	}
	if n, err := network.Inspect(r.ctx(ctx), spec.Name, nil); err == nil {
		return fromPodman(n), nil
	} else if err := r.mapErr(err, fmt.Sprintf("inspecting network %q", spec.Name)); !errors.Is(err, runtime.ErrNotFound) {
		return runtime.Network{}, err
	}
	n := nettypes.Network{
		Name:        spec.Name,
		Driver:      "bridge",
		DNSEnabled:  true,
		Labels:      spec.Labels,
		IPv6Enabled: spec.IPv6,
	}
	for _, cidr := range []string{spec.Subnet, spec.SubnetV6} {
		if cidr == "" {
			continue
		}
		ipnet, err := nettypes.ParseCIDR(cidr)
		if err != nil {
			return runtime.Network{}, fmt.Errorf("network %q: subnet %q: %v: %w", spec.Name, cidr, err, runtime.ErrInvalid)
		}
		n.Subnets = append(n.Subnets, nettypes.Subnet{Subnet: ipnet})
	}
	created, err := network.Create(r.ctx(ctx), &n)
	if err != nil {
		err = r.mapErr(err, fmt.Sprintf("creating network %q", spec.Name))
		if errors.Is(err, runtime.ErrAlreadyExists) { // created meanwhile by someone else
			if existing, ierr := network.Inspect(r.ctx(ctx), spec.Name, nil); ierr == nil {
				return fromPodman(existing), nil
			}
		}
		return runtime.Network{}, err
	}
	return fromPodman(created), nil
}

func fromPodman(n nettypes.Network) runtime.Network {
	out := runtime.Network{Name: n.Name}
	for _, s := range n.Subnets {
		if s.Subnet.IP.To4() != nil {
			if out.Subnet == "" {
				out.Subnet = s.Subnet.String()
				if s.Gateway != nil {
					out.Gateway = s.Gateway.String()
				}
			}
		} else if out.SubnetV6 == "" {
			out.SubnetV6 = s.Subnet.String()
		}
	}
	return out
}

// DeleteNetwork removes a network; ErrNotFound when it does not exist.
func (r *Runtime) DeleteNetwork(ctx context.Context, name string) error {
	_, err := network.Remove(r.ctx(ctx), name, nil)
	return r.mapErr(err, fmt.Sprintf("removing network %q", name))
}
