package docker

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/kinc-dev/kinc/runtime"
)

func TestCreateOptions(t *testing.T) {
	node := runtime.NodeSpec{
		Name: "c1-worker", Image: "kinc/node:v1", Env: map[string]string{"A": "b"},
		Network: "kinc", Aliases: []string{"w"}, IP: "172.30.0.5",
		Mounts: []runtime.Mount{{HostPath: "/src", ContainerPath: "/dst", SELinuxRelabel: true, Propagation: runtime.PropagationBidirectional}},
	}
	ports := []runtime.PortMapping{{ListenAddress: "127.0.0.1", HostPort: 40001, ContainerPort: 6443, Protocol: "tcp"}}
	o, err := createOptions(node, ports)
	if err != nil {
		t.Fatal(err)
	}
	hc, cfg := o.HostConfig, o.Config
	p := network.MustParsePort("6443/tcp")
	ep := o.NetworkingConfig.EndpointsConfig["kinc"]
	checks := []struct {
		what string
		ok   bool
	}{
		{"privileged", hc.Privileged},
		{"private cgroupns", hc.CgroupnsMode == container.CgroupnsModePrivate},
		{"unconfined", strings.Join(hc.SecurityOpt, ",") == "seccomp=unconfined,apparmor=unconfined"},
		{"tmpfs", len(hc.Tmpfs) == 2 && hc.Tmpfs["/run"] != "" && hc.Tmpfs["/tmp"] != ""},
		{"/var volume", len(hc.Mounts) == 1 && hc.Mounts[0].Source == "c1-worker-var" && hc.Mounts[0].Target == "/var"},
		{"bind", len(hc.Binds) == 1 && hc.Binds[0] == "/src:/dst:rshared,z"},
		{"pids unlimited", hc.PidsLimit != nil && *hc.PidsLimit == -1},
		{"stop signal", cfg.StopSignal == "SIGRTMIN+3"},
		{"env", strings.Join(cfg.Env, " ") == "A=b container=docker"},
		{"port", len(hc.PortBindings[p]) == 1 && hc.PortBindings[p][0].HostPort == "40001" && hc.PortBindings[p][0].HostIP.String() == "127.0.0.1"},
		{"network", string(hc.NetworkMode) == "kinc" && ep.IPAMConfig.IPv4Address.String() == "172.30.0.5" && ep.Aliases[0] == "w"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("create options lack %s: %+v %+v", c.what, cfg, hc)
		}
	}
	if _, err := createOptions(runtime.NodeSpec{Name: "x", Image: "i", Ports: []runtime.PortMapping{{ListenAddress: "localhost", ContainerPort: 1}}}, []runtime.PortMapping{{ListenAddress: "localhost", ContainerPort: 1, Protocol: "tcp"}}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("listen address by name: err = %v, want ErrInvalid", err)
	}
}

func TestNewUnavailable(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	_, err := New(context.Background(), WithHost(sock))
	if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), sock) {
		t.Errorf("New(%s) = %v, want ErrUnavailable naming the socket", sock, err)
	}
}
