// Package lb renders the haproxy config of the load balancer that fronts
// the API servers of a cluster with several control planes, and says how
// the load balancer container starts and reloads it.
//
// The load balancer runs kinc's node image (systemd, Debian's haproxy
// package, its unit disabled). Debian's haproxy.service runs haproxy in
// master-worker mode (-Ws), and its reload checks the new config first,
// then sends SIGUSR2 to the master: new workers take the listening sockets
// while the old ones finish the connections they hold, so a reload drops
// none (long watches end within HardStopAfter).
//
// Create writes Config's output to ConfigPath and DropIn to DropInPath in
// the load balancer container, then runs StartCommand there. When the
// control planes change, it writes ConfigPath again and runs
// ReloadCommand.
package lb

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/kinc-dev/kinc/cluster/config"
)

// Where things live in the load balancer container.
const (
	// ConfigPath is haproxy's config, as kind has it.
	ConfigPath = "/kind/haproxy.cfg"
	// DropInPath points Debian's haproxy.service at ConfigPath.
	DropInPath = "/etc/systemd/system/haproxy.service.d/10-kinc.conf"
	// DefaultPort is where the load balancer and each API server listen.
	DefaultPort = 6443
	// HardStopAfter bounds how long workers replaced by a reload may keep
	// serving their old connections.
	HardStopAfter = "5m"
)

// DropIn is the content of DropInPath. The unit's read-only bind of
// /dev/log is cleared: haproxy logs to stdout (the journal) here, and a
// missing /dev/log would keep the unit from starting at all.
const DropIn = `[Service]
Environment="CONFIG=` + ConfigPath + `"
BindReadOnlyPaths=
`

// StartCommand runs in the container once ConfigPath and DropInPath are
// written: haproxy starts, and starts again with the container.
func StartCommand() []string {
	return []string{"sh", "-c", "systemctl daemon-reload && systemctl enable --now haproxy.service"}
}

// ReloadCommand runs in the container after ConfigPath changed. It fails,
// leaving the running haproxy alone, when the new config is invalid.
func ReloadCommand() []string {
	return []string{"systemctl", "reload", "haproxy.service"}
}

// Backend is one API server.
type Backend struct {
	// Name is the server's name in haproxy's logs: the node's name.
	Name string
	// Address is a host name (the node container's name, resolved through
	// the runtime's DNS) or an IP address.
	Address string
	// Port is the API server's; 0 means DefaultPort.
	Port int
}

// Input is what the load balancer's config is made from.
type Input struct {
	// BindPort is where the load balancer listens; 0 means DefaultPort.
	BindPort int
	// IPFamily of the cluster: ipv6 and dual also listen on IPv6, ipv6
	// resolves names to IPv6 addresses first.
	IPFamily config.IPFamily
	// Backends are the control planes.
	Backends []Backend
}

// Config renders haproxy's config.
func Config(in Input) (string, error) {
	if len(in.Backends) == 0 {
		return "", fmt.Errorf("rendering load balancer config: no control planes to balance")
	}
	data := templateData{
		BindPort:      orDefault(in.BindPort),
		BindIPv6:      in.IPFamily == config.IPv6Family || in.IPFamily == config.DualStack,
		ResolvePrefer: "ipv4",
		HardStopAfter: HardStopAfter,
	}
	if in.IPFamily == config.IPv6Family {
		data.ResolvePrefer = "ipv6"
	}
	seen := map[string]bool{}
	for _, b := range in.Backends {
		if !validName(b.Name) {
			return "", fmt.Errorf("rendering load balancer config: server name %q: want letters, digits, '.', '_', ':' or '-'", b.Name)
		}
		if seen[b.Name] {
			return "", fmt.Errorf("rendering load balancer config: server %q named twice", b.Name)
		}
		seen[b.Name] = true
		if b.Address == "" || strings.ContainsAny(b.Address, " \t\n#[]") {
			return "", fmt.Errorf("rendering load balancer config: server %q: bad address %q", b.Name, b.Address)
		}
		addr := b.Address
		if strings.Contains(addr, ":") {
			// haproxy takes the last colon as the port's; the prefix makes
			// an IPv6 literal unambiguous.
			addr = "ipv6@" + addr
		}
		data.Servers = append(data.Servers, server{Name: b.Name, Address: fmt.Sprintf("%s:%d", addr, orDefault(b.Port))})
	}
	var b strings.Builder
	if err := haproxyConfig.Execute(&b, data); err != nil {
		return "", fmt.Errorf("rendering load balancer config: %w", err)
	}
	return b.String(), nil
}

func orDefault(port int) int {
	if port == 0 {
		return DefaultPort
	}
	return port
}

// validName is what haproxy accepts as a server name.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)
		if !ok {
			return false
		}
	}
	return true
}

type server struct{ Name, Address string }

type templateData struct {
	BindPort      int
	BindIPv6      bool
	ResolvePrefer string
	HardStopAfter string
	Servers       []server
}

// The health check asks each API server's /healthz over TLS (readable
// without credentials), so a server whose apiserver is up but unhealthy
// is taken out; names are resolved at start when possible, and again
// while running, so haproxy starts before the control planes exist and
// follows a node whose address changed.
var haproxyConfig = template.Must(template.New("haproxy.cfg").Parse(`# The API server load balancer of a kinc cluster. Written by kinc:
# edit the cluster, not this file.
global
  log stdout format raw local0 info
  hard-stop-after {{.HardStopAfter}}

resolvers runtime
  parse-resolv-conf
  resolve_retries 3
  timeout resolve 1s
  timeout retry 1s
  hold valid 10s
  hold other 10s
  hold refused 10s
  hold nx 10s
  hold timeout 10s
  hold obsolete 10s

defaults
  log global
  mode tcp
  option tcplog
  option dontlognull
  timeout connect 5s
  timeout check 5s
  # kubectl watch, logs -f and exec hold connections open.
  timeout client 1h
  timeout server 1h

frontend control-plane
  bind *:{{.BindPort}}
{{- if .BindIPv6}}
  bind :::{{.BindPort}} v6only
{{- end}}
  default_backend kube-apiservers

backend kube-apiservers
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server check check-ssl verify none inter 2s downinter 2s fall 3 rise 2 init-addr last,libc,none resolvers runtime resolve-prefer {{.ResolvePrefer}}
{{- range .Servers}}
  server {{.Name}} {{.Address}}
{{- end}}
`))
