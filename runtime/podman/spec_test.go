package podman

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kinc-dev/kinc/runtime"
)

func TestNodeSpecgen(t *testing.T) {
	node := runtime.NodeSpec{
		Name: "c1-control-plane", Image: "kinc/node:v1", Labels: map[string]string{runtime.LabelCluster: "c1"},
		Env: map[string]string{"A": "b"}, Network: "kinc", Aliases: []string{"cp"}, IP: "10.89.0.10",
		Mounts: []runtime.Mount{{HostPath: "/src", ContainerPath: "/dst", ReadOnly: true, Propagation: runtime.PropagationHostToContainer}},
	}
	ports := []runtime.PortMapping{{ListenAddress: "127.0.0.1", HostPort: 40000, ContainerPort: 6443, Protocol: "tcp"}}
	s, err := nodeSpecgen(node, ports)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"privileged", s.Privileged},
		{"systemd mode off", s.Systemd == "false"},
		{"private cgroupns", s.CgroupNS.NSMode == "private"},
		{"stop signal SIGRTMIN+3", s.StopSignal != nil && int(*s.StopSignal) == 37},
		{"pids unlimited", s.ResourceLimits != nil && s.ResourceLimits.Pids != nil && s.ResourceLimits.Pids.Limit == -1},
		{"container=podman", s.Env["container"] == "podman" && s.Env["A"] == "b"},
		{"hostname defaults to name", s.Hostname == node.Name},
		{"/var volume", len(s.Volumes) == 1 && s.Volumes[0].Name == "c1-control-plane-var" && s.Volumes[0].Dest == "/var"},
		{"port", len(s.PortMappings) == 1 && s.PortMappings[0].HostPort == 40000 && s.PortMappings[0].ContainerPort == 6443 && s.PortMappings[0].HostIP == "127.0.0.1"},
		{"network", s.NetNS.NSMode == "bridge" && len(s.Networks["kinc"].StaticIPs) == 1 && s.Networks["kinc"].StaticIPs[0].String() == "10.89.0.10" && s.Networks["kinc"].Aliases[0] == "cp"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("spec lacks %s: %+v", c.what, s)
		}
	}
	var tmpfs []string
	var bind string
	for _, m := range s.Mounts {
		switch m.Type {
		case "tmpfs":
			tmpfs = append(tmpfs, m.Destination)
		case "bind":
			if m.Destination == "/dst" {
				bind = strings.Join(m.Options, ",")
			}
		}
	}
	if strings.Join(tmpfs, ",") != "/run,/tmp" {
		t.Errorf("tmpfs mounts = %v, want /run and /tmp", tmpfs)
	}
	if bind != "rbind,ro,rslave" {
		t.Errorf("bind mount options = %q", bind)
	}
	if _, err := nodeSpecgen(runtime.NodeSpec{Name: "x", Image: "i", Network: "n", IP: "nope"}, nil); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("bad IP: err = %v, want ErrInvalid", err)
	}
}

func TestNewUnavailable(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	_, err := New(context.Background(), WithURI(sock))
	if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), sock) {
		t.Errorf("New(%s) = %v, want ErrUnavailable naming the socket", sock, err)
	}
}

func TestSockets(t *testing.T) {
	t.Setenv("CONTAINER_HOST", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	got := strings.Join(Sockets(), " ")
	if got != "unix:///run/user/1000/podman/podman.sock unix:///run/podman/podman.sock" {
		t.Errorf("Sockets() = %s", got)
	}
	t.Setenv("CONTAINER_HOST", "tcp://h:1")
	if got := Sockets(); len(got) != 1 || got[0] != "tcp://h:1" {
		t.Errorf("Sockets() with CONTAINER_HOST = %v", got)
	}
}
