package containerd

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strings"
)

// Candidate pools for networks created without a subnet: /24s from
// 172.20.0.0/14 (docker hands out 172.17 and 172.18 first, podman 10.88 and
// 10.89) and /64s under a ULA prefix spelling "kinc".
var (
	poolV4 = netip.MustParsePrefix("172.20.0.0/14")
	poolV6 = netip.MustParsePrefix("fd6b:696e:6300::/48")
)

const (
	subnetBitsV4 = 24
	subnetBitsV6 = 64
)

// pickSubnet returns the first subnet of the given size in pool that
// overlaps none of taken.
func pickSubnet(pool netip.Prefix, bits int, taken []netip.Prefix) (netip.Prefix, error) {
	pool = pool.Masked()
	if bits < pool.Bits() || bits > pool.Addr().BitLen() {
		return netip.Prefix{}, fmt.Errorf("subnet size /%d does not fit pool %s", bits, pool)
	}
	count := 1 << min(bits-pool.Bits(), 16)
	for i := 0; i < count; i++ {
		addr := addOffset(pool.Addr(), uint64(i), bits)
		cand := netip.PrefixFrom(addr, bits)
		if !pool.Contains(addr) {
			break
		}
		if !overlapsAny(cand, taken) {
			return cand, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d subnet left in %s", bits, pool)
}

// addOffset returns base plus i subnets of the given size.
func addOffset(base netip.Addr, i uint64, bits int) netip.Addr {
	b := base.AsSlice()
	n := new(big.Int).SetBytes(b)
	step := new(big.Int).Lsh(big.NewInt(int64(i)), uint(base.BitLen()-bits))
	n.Add(n, step)
	out := n.FillBytes(make([]byte, len(b)))
	a, _ := netip.AddrFromSlice(out)
	return a
}

func overlapsAny(p netip.Prefix, taken []netip.Prefix) bool {
	for _, t := range taken {
		if t.IsValid() && t.Addr().Is4() == p.Addr().Is4() && t.Overlaps(p) {
			return true
		}
	}
	return false
}

// gatewayOf is the first address of a subnet, where the bridge sits.
func gatewayOf(p netip.Prefix) netip.Addr {
	return p.Masked().Addr().Next()
}

// hostPrefixes lists what the host already routes or is addressed on, so a
// new network does not shadow it. Default routes are skipped: they overlap
// everything.
func hostPrefixes() []netip.Prefix {
	var out []netip.Prefix
	if f, err := os.Open("/proc/net/route"); err == nil {
		out = append(out, parseRouteV4(f)...)
		f.Close()
	}
	if f, err := os.Open("/proc/net/ipv6_route"); err == nil {
		out = append(out, parseRouteV6(f)...)
		f.Close()
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// parseRouteV4 reads /proc/net/route: destination and mask are hex words in
// host (little-endian) byte order.
func parseRouteV4(r io.Reader) []netip.Prefix {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[0] == "Iface" {
			continue
		}
		dst, err1 := hex.DecodeString(f[1])
		mask, err2 := hex.DecodeString(f[7])
		if err1 != nil || err2 != nil || len(dst) != 4 || len(mask) != 4 {
			continue
		}
		d := binary.LittleEndian.Uint32(dst)
		m := binary.LittleEndian.Uint32(mask)
		ones, _ := net.IPMask(binary.BigEndian.AppendUint32(nil, m)).Size()
		if ones == 0 {
			continue
		}
		addr := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, d)))
		out = append(out, netip.PrefixFrom(addr, ones).Masked())
	}
	return out
}

// parseRouteV6 reads /proc/net/ipv6_route: destination in hex, prefix
// length in hex.
func parseRouteV6(r io.Reader) []netip.Prefix {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		dst, err := hex.DecodeString(f[0])
		if err != nil || len(dst) != 16 {
			continue
		}
		var bits int
		if _, err := fmt.Sscanf(f[1], "%x", &bits); err != nil || bits == 0 || bits == 128 {
			continue
		}
		addr := netip.AddrFrom16([16]byte(dst))
		if addr.IsLinkLocalUnicast() || addr.IsMulticast() {
			continue
		}
		out = append(out, netip.PrefixFrom(addr, bits).Masked())
	}
	return out
}
