package gobuild

import (
	"fmt"
	"sort"
)

// Modules of the programs a node needs besides Kubernetes. Each is a plain
// Module: pass it to Build. Versions are the upstream tags (v3.6.5), not
// image tags (3.6.5-0).

// Etcd builds etcd and etcdctl. etcd's own main package lives in a module
// whose go.mod the proxy cannot satisfy, so a one-line main of ours calls
// the server's etcdmain, as upstream's does.
func Etcd(version string) []Module {
	return []Module{
		{
			Name:     "etcd",
			Path:     "go.etcd.io/etcd/server/v3",
			Version:  version,
			Packages: []string{"./etcd"},
			Files: map[string]string{"etcd/main.go": `// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
`},
			LDFlags: []string{"-s", "-w"},
		},
		{
			Name:     "etcdctl",
			Path:     "go.etcd.io/etcd/etcdctl/v3",
			Version:  version,
			Packages: []string{"go.etcd.io/etcd/etcdctl/v3"},
			LDFlags:  []string{"-s", "-w"},
		},
	}
}

// CoreDNS builds coredns with its default plugins.
func CoreDNS(version string) Module {
	return Module{
		Name:     "coredns",
		Path:     "github.com/coredns/coredns",
		Version:  version,
		Packages: []string{"github.com/coredns/coredns"},
		LDFlags:  []string{"-s", "-w"},
	}
}

// Crictl builds crictl (the proxy serves v1.37.0, not v1.36.0).
func Crictl(version string) Module {
	return Module{
		Name:     "crictl",
		Path:     "sigs.k8s.io/cri-tools",
		Version:  version,
		Packages: []string{"sigs.k8s.io/cri-tools/cmd/crictl"},
		LDFlags:  []string{"-s", "-w", "-X", "sigs.k8s.io/cri-tools/pkg/version.Version=" + version},
	}
}

// Flannel builds flanneld. Its main imports the tencentvpc and udp
// backends, whose dependencies the proxy does not serve: the build takes
// its main without them (kinc uses the vxlan or host-gw backend).
func Flannel(version string) Module {
	const mod = "github.com/flannel-io/flannel"
	return Module{
		Name:     "flannel",
		Path:     mod,
		Version:  version,
		Packages: []string{"./flanneld"},
		Copies: []FileCopy{{From: "main.go", To: "flanneld/main.go", DropLines: []string{
			`_ "` + mod + `/pkg/backend/tencentvpc"`,
			`_ "` + mod + `/pkg/backend/udp"`,
		}}},
		LDFlags: []string{"-s", "-w", "-X", mod + "/pkg/version.Version=" + version},
	}
}

// LocalPathProvisioner builds rancher's local-path-provisioner (the proxy
// serves v0.0.30, not v0.0.32).
func LocalPathProvisioner(version string) Module {
	const mod = "github.com/rancher/local-path-provisioner"
	return Module{
		Name:     "local-path-provisioner",
		Path:     mod,
		Version:  version,
		Packages: []string{mod},
		LDFlags:  []string{"-s", "-w", "-X", "main.VERSION=" + version},
	}
}

// CNIPluginPackages maps the CNI plugins a node uses to their packages.
var CNIPluginPackages = map[string]string{
	"bridge":     "plugins/main/bridge",
	"host-local": "plugins/ipam/host-local",
	"loopback":   "plugins/main/loopback",
	"portmap":    "plugins/meta/portmap",
	"ptp":        "plugins/main/ptp",
}

// CNIPlugins builds the named plugins (all of CNIPluginPackages when none
// are named) of github.com/containernetworking/plugins.
func CNIPlugins(version string, plugins ...string) (Module, error) {
	const mod = "github.com/containernetworking/plugins"
	if len(plugins) == 0 {
		for p := range CNIPluginPackages {
			plugins = append(plugins, p)
		}
	}
	m := Module{
		Name:    "CNI plugins",
		Path:    mod,
		Version: version,
		LDFlags: []string{"-s", "-w", "-X", "github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=" + version},
	}
	for _, p := range plugins {
		pkg, ok := CNIPluginPackages[p]
		if !ok {
			return Module{}, fmt.Errorf("unknown CNI plugin %q", p)
		}
		m.Packages = append(m.Packages, mod+"/"+pkg)
	}
	// Sorted, so that the cache key does not depend on map order.
	sort.Strings(m.Packages)
	return m, nil
}
