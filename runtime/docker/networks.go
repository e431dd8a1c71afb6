package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/kinc-dev/kinc/runtime"
)

// EnsureNetwork creates a bridge network, or returns the existing one of
// that name unchanged.
func (r *Runtime) EnsureNetwork(ctx context.Context, spec runtime.NetworkSpec) (runtime.Network, error) {
	if spec.Name == "" {
		return runtime.Network{}, fmt.Errorf("network without a name: %w", runtime.ErrInvalid)
	}
	if n, err := r.inspectNetwork(ctx, spec.Name); !errors.Is(err, runtime.ErrNotFound) {
		return n, err
	}
	// Docker gives fixed addresses only on networks whose subnets were
	// named, so name them even when the caller did not.
	if spec.Subnet == "" || (spec.IPv6 && spec.SubnetV6 == "") {
		taken, err := r.takenSubnets(ctx)
		if err != nil {
			return runtime.Network{}, err
		}
		if spec.Subnet == "" {
			p, err := runtime.PickFreeSubnet(false, taken)
			if err != nil {
				return runtime.Network{}, fmt.Errorf("network %q: %w", spec.Name, err)
			}
			spec.Subnet = p.String()
		}
		if spec.IPv6 && spec.SubnetV6 == "" {
			p, err := runtime.PickFreeSubnet(true, taken)
			if err != nil {
				return runtime.Network{}, fmt.Errorf("network %q: %w", spec.Name, err)
			}
			spec.SubnetV6 = p.String()
		}
	}
	ipam := &network.IPAM{Driver: "default"}
	for _, cidr := range []string{spec.Subnet, spec.SubnetV6} {
		if cidr == "" {
			continue
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return runtime.Network{}, fmt.Errorf("network %q: subnet %q: %v: %w", spec.Name, cidr, err, runtime.ErrInvalid)
		}
		ipam.Config = append(ipam.Config, network.IPAMConfig{Subnet: p.Masked()})
	}
	ipv6 := spec.IPv6
	_, err := r.c.NetworkCreate(ctx, spec.Name, client.NetworkCreateOptions{
		Driver:     "bridge",
		EnableIPv6: &ipv6,
		IPAM:       ipam,
		Labels:     spec.Labels,
		// Masquerade and inter-container traffic as on docker's default bridge.
		Options: map[string]string{"com.docker.network.bridge.enable_ip_masquerade": "true"},
	})
	if err != nil {
		err = r.mapErr(err, fmt.Sprintf("creating network %q", spec.Name))
		if !errors.Is(err, runtime.ErrAlreadyExists) {
			return runtime.Network{}, err
		}
		// Created meanwhile by someone else: use theirs.
	}
	return r.inspectNetwork(ctx, spec.Name)
}

// takenSubnets are the subnets of docker's existing networks.
func (r *Runtime) takenSubnets(ctx context.Context) ([]netip.Prefix, error) {
	res, err := r.c.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, r.mapErr(err, "listing networks")
	}
	var out []netip.Prefix
	for _, n := range res.Items {
		for _, c := range n.IPAM.Config {
			if c.Subnet.IsValid() {
				out = append(out, c.Subnet)
			}
		}
	}
	return out, nil
}

func (r *Runtime) inspectNetwork(ctx context.Context, name string) (runtime.Network, error) {
	res, err := r.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return runtime.Network{}, r.mapErr(err, fmt.Sprintf("inspecting network %q", name))
	}
	// Docker matches IDs by prefix and names loosely: insist on the name.
	if res.Network.Name != name {
		return runtime.Network{}, fmt.Errorf("inspecting network %q: %w", name, runtime.ErrNotFound)
	}
	out := runtime.Network{Name: name}
	for _, c := range res.Network.IPAM.Config {
		if !c.Subnet.IsValid() {
			continue
		}
		if c.Subnet.Addr().Is4() && out.Subnet == "" {
			out.Subnet = c.Subnet.String()
			if c.Gateway.IsValid() {
				out.Gateway = c.Gateway.String()
			}
		} else if c.Subnet.Addr().Is6() && out.SubnetV6 == "" {
			out.SubnetV6 = c.Subnet.String()
		}
	}
	return out, nil
}

// DeleteNetwork removes a network; ErrNotFound when it does not exist.
func (r *Runtime) DeleteNetwork(ctx context.Context, name string) error {
	if _, err := r.inspectNetwork(ctx, name); err != nil {
		return err
	}
	_, err := r.c.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	return r.mapErr(err, fmt.Sprintf("removing network %q", name))
}
