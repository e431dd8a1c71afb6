package containerd

import (
	"bufio"
	"bytes"
	"net/netip"
	"sort"
	"strings"
)

// hostEntry is a node as the others on its network see it.
type hostEntry struct {
	IPv4  string
	IPv6  string
	Names []string // hostname first, then container name and aliases
}

// containerd has no embedded DNS, so nodes find each other through
// /etc/hosts, a file kinc owns on the host and bind-mounts into each node.
const hostsHeader = `# Managed by kinc: rewritten when nodes on this network start or stop.
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
ff00::0	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// renderHosts is the /etc/hosts of a node: localhost, the node itself,
// then its running peers sorted by first name.
func renderHosts(self hostEntry, peers []hostEntry) []byte {
	var b bytes.Buffer
	b.WriteString(hostsHeader)
	writeEntry := func(e hostEntry) {
		names := dedup(e.Names)
		if len(names) == 0 {
			return
		}
		for _, ip := range []string{e.IPv4, e.IPv6} {
			if ip != "" {
				b.WriteString(ip + "\t" + strings.Join(names, " ") + "\n")
			}
		}
	}
	writeEntry(self)
	sorted := append([]hostEntry(nil), peers...)
	sort.SliceStable(sorted, func(i, j int) bool {
		return firstName(sorted[i]) < firstName(sorted[j])
	})
	for _, p := range sorted {
		writeEntry(p)
	}
	return b.Bytes()
}

func firstName(e hostEntry) string {
	if len(e.Names) == 0 {
		return ""
	}
	return e.Names[0]
}

func dedup(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

// fallbackNameservers are used when the host only lists loopback resolvers
// (systemd-resolved, dnsmasq), which a node cannot reach.
var fallbackNameservers = []string{"8.8.8.8", "8.8.4.4"}

// renderResolvConf derives a node's /etc/resolv.conf from the host's:
// loopback nameservers are dropped (they point at the node itself once
// inside), search and options lines are kept.
func renderResolvConf(host []byte) []byte {
	var b bytes.Buffer
	nameservers := 0
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) < 2 {
				continue
			}
			addr, err := netip.ParseAddr(strings.SplitN(f[1], "%", 2)[0])
			if err != nil || addr.IsLoopback() {
				continue
			}
			nameservers++
		case "search", "domain", "options":
		default:
			continue
		}
		b.WriteString(strings.Join(f, " ") + "\n")
	}
	if nameservers == 0 {
		for _, ns := range fallbackNameservers {
			b.WriteString("nameserver " + ns + "\n")
		}
	}
	return b.Bytes()
}
