package runtime

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestLabelFiltersAndMatch(t *testing.T) {
	want := map[string]string{LabelCluster: "c1", LabelRole: ""}
	if got := LabelFilters(want); !reflect.DeepEqual(got, []string{"dev.kinc.cluster=c1", "dev.kinc.role"}) {
		t.Errorf("LabelFilters = %v", got)
	}
	tests := []struct {
		name string
		have map[string]string
		ok   bool
	}{
		{"all", map[string]string{LabelCluster: "c1", LabelRole: "worker", "x": "y"}, true},
		{"other cluster", map[string]string{LabelCluster: "c2", LabelRole: "worker"}, false},
		{"no role", map[string]string{LabelCluster: "c1"}, false},
		{"nothing", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MatchLabels(tt.have, want); got != tt.ok {
				t.Errorf("MatchLabels(%v) = %v, want %v", tt.have, got, tt.ok)
			}
		})
	}
}

func TestResolvePorts(t *testing.T) {
	fixed, err := FreePort("127.0.0.1", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ResolvePorts([]PortMapping{
		{ListenAddress: "127.0.0.1", ContainerPort: 6443},
		{ListenAddress: "127.0.0.1", ContainerPort: 53, Protocol: "udp"},
		{HostPort: fixed, ContainerPort: 80},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].HostPort == 0 || got[0].Protocol != "tcp" {
		t.Errorf("tcp port not resolved: %+v", got[0])
	}
	if got[1].HostPort == 0 || got[1].Protocol != "udp" {
		t.Errorf("udp port not resolved: %+v", got[1])
	}
	if got[2].HostPort != fixed {
		t.Errorf("fixed port changed: %+v", got[2])
	}
	// The port picked is really free: binding it works.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(got[0].HostPort)))
	if err != nil {
		t.Errorf("picked port %d is not free: %v", got[0].HostPort, err)
	} else {
		l.Close()
	}
	if _, err := ResolvePorts([]PortMapping{{ContainerPort: 1, Protocol: "icmp"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown protocol: err = %v, want ErrInvalid", err)
	}
}

func TestParsePortBinding(t *testing.T) {
	tests := []struct {
		key, ip, port string
		want          PortMapping
		bad           bool
	}{
		{"6443/tcp", "127.0.0.1", "41234", PortMapping{"127.0.0.1", 41234, 6443, "tcp"}, false},
		{"53/udp", "", "5353", PortMapping{"", 5353, 53, "udp"}, false},
		{"80", "0.0.0.0", "8080", PortMapping{"0.0.0.0", 8080, 80, "tcp"}, false},
		{"x/tcp", "", "1", PortMapping{}, true},
		{"80/tcp", "", "", PortMapping{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.key+"_"+tt.port, func(t *testing.T) {
			got, err := ParsePortBinding(tt.key, tt.ip, tt.port)
			if (err != nil) != tt.bad || got != tt.want {
				t.Errorf("ParsePortBinding = %+v, %v; want %+v (error %v)", got, err, tt.want, tt.bad)
			}
		})
	}
}

func TestValidateNodeSpec(t *testing.T) {
	tests := []struct {
		name string
		spec NodeSpec
		ok   bool
	}{
		{"minimal", NodeSpec{Name: "n", Image: "i"}, true},
		{"no image", NodeSpec{Name: "n"}, false},
		{"ip without network", NodeSpec{Name: "n", Image: "i", IP: "10.0.0.2"}, false},
		{"relative mount", NodeSpec{Name: "n", Image: "i", Mounts: []Mount{{HostPath: "/a", ContainerPath: "b"}}}, false},
		{"port out of range", NodeSpec{Name: "n", Image: "i", Ports: []PortMapping{{ContainerPort: 70000}}}, false},
		{"full", NodeSpec{Name: "n", Image: "i", Network: "net", IP: "10.0.0.2", Ports: []PortMapping{{ContainerPort: 6443, Protocol: "tcp"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateNodeSpec(tt.spec)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("ValidateNodeSpec = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestNodeEnvAndMounts(t *testing.T) {
	env := NodeEnv(NodeSpec{Env: map[string]string{"B": "2", "A": "1"}}, "docker")
	if !reflect.DeepEqual(env, []string{"A=1", "B=2", "container=docker"}) {
		t.Errorf("NodeEnv = %v", env)
	}
	if env := NodeEnv(NodeSpec{Env: map[string]string{"container": "mine"}}, "docker"); !reflect.DeepEqual(env, []string{"container=mine"}) {
		t.Errorf("NodeEnv does not let the spec override container: %v", env)
	}

	old := modulesDir
	t.Cleanup(func() { modulesDir = old })
	modulesDir = filepath.Join(t.TempDir(), "none")
	if m := NodeMounts(NodeSpec{}); len(m) != 0 {
		t.Errorf("NodeMounts without host modules = %v, want none", m)
	}
	modulesDir = t.TempDir()
	m := NodeMounts(NodeSpec{})
	if len(m) != 1 || !m[0].ReadOnly || m[0].ContainerPath != "/lib/modules" {
		t.Errorf("NodeMounts with host modules = %+v", m)
	}
	opts := MountOptions(Mount{ReadOnly: true, Propagation: PropagationHostToContainer, SELinuxRelabel: true})
	if !reflect.DeepEqual(opts, []string{"ro", "rslave", "z"}) {
		t.Errorf("MountOptions = %v", opts)
	}
}

func TestParseState(t *testing.T) {
	for in, want := range map[string]State{
		"running": StateRunning, "exited": StateStopped, "configured": StateCreated,
		"Created": StateCreated, "dead": StateStopped, "weird": StateUnknown,
	} {
		if got := ParseState(in); got != want {
			t.Errorf("ParseState(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExecOutput(t *testing.T) {
	var mine bytes.Buffer
	out := NewExecOutput(ExecSpec{Stdout: &mine})
	_, _ = out.Stdout().Write([]byte("hello\n"))
	_, _ = out.Stderr().Write([]byte("oops\n"))
	if mine.String() != "hello\n" {
		t.Errorf("caller's stdout got %q", mine.String())
	}
	if err := out.Result("n", []string{"x"}, 0); err != nil {
		t.Errorf("Result(0) = %v", err)
	}
	var exitErr *ExitError
	if err := out.Result("n", []string{"x"}, 2); !errors.As(err, &exitErr) || exitErr.Code != 2 || exitErr.Output != "hello\noops\n" {
		t.Errorf("Result(2) = %#v", err)
	}
	// Only the tail is kept.
	big := NewExecOutput(ExecSpec{})
	_, _ = big.Stdout().Write(bytes.Repeat([]byte("a"), outputTailSize))
	_, _ = big.Stdout().Write([]byte("END"))
	if err := big.Result("n", nil, 1); !errors.As(err, &exitErr) || len(exitErr.Output) != outputTailSize || !strings.HasSuffix(exitErr.Output, "END") {
		t.Errorf("tail not kept: len %d", len(exitErr.Output))
	}
}

func TestTarFilesRoundTrip(t *testing.T) {
	tr := TarFiles(File{Name: "a/b/c.txt", Content: []byte("c")}, File{Name: "/d.txt", Content: []byte("d"), Mode: 0o600})
	data, err := readAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a/b/c.txt": "c", "d.txt": "d", "/a/b/c.txt": "c"} {
		got, err := ReadTarFile(bytes.NewReader(data), name)
		if err != nil || string(got) != want {
			t.Errorf("ReadTarFile(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := ReadTarFile(bytes.NewReader(data), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadTarFile(missing) = %v, want ErrNotFound", err)
	}
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// fakeRuntime is enough of a Runtime for detection: only Info and Close run.
type fakeRuntime struct {
	Runtime
	name string
}

func (f fakeRuntime) Info(context.Context) (Info, error) { return Info{Name: f.name}, nil }
func (f fakeRuntime) Close() error                       { return nil }

func TestDetect(t *testing.T) {
	saved := registry
	t.Cleanup(func() { registry = saved })
	registry = map[string]Backend{}
	down := func(context.Context) (Runtime, error) { return nil, ErrUnavailable }
	up := func(name string) func(context.Context) (Runtime, error) {
		return func(context.Context) (Runtime, error) { return fakeRuntime{name: name}, nil }
	}
	sockets := func(s string) func() []string { return func() []string { return []string{s} } }
	Register(Backend{Name: "containerd", Open: up("containerd"), Sockets: sockets("/c.sock")})
	Register(Backend{Name: "docker", Open: up("docker"), Sockets: sockets("/d.sock")})
	Register(Backend{Name: "podman", Open: down, Sockets: sockets("/p.sock"), StartHint: "start podman"})

	var order []string
	for _, b := range Backends() {
		order = append(order, b.Name)
	}
	if strings.Join(order, ",") != "podman,docker,containerd" {
		t.Errorf("Backends order = %v", order)
	}
	ctx := context.Background()
	rt, err := Detect(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := rt.Info(ctx); info.Name != "docker" {
		t.Errorf("Detect picked %q, want docker (podman is down)", info.Name)
	}
	if rt, err := Detect(ctx, "containerd"); err != nil || rt == nil {
		t.Errorf("Detect(containerd) = %v, %v", rt, err)
	}
	if _, err := Detect(ctx, "podman"); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "start podman") {
		t.Errorf("Detect(podman) = %v, want ErrUnavailable with a hint", err)
	}
	if _, err := Detect(ctx, "lxc"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Detect(lxc) = %v, want ErrNotSupported", err)
	}

	Register(Backend{Name: "docker", Open: down, Sockets: sockets("/d.sock")})
	Register(Backend{Name: "containerd", Open: down, Sockets: sockets("/c.sock")})
	_, err = Detect(ctx, "")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Detect with all down = %v, want ErrUnavailable", err)
	}
	for _, s := range []string{"/p.sock", "/d.sock", "/c.sock", "start podman"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Detect error does not mention %q:\n%v", s, err)
		}
	}

	results, err := Probe(ctx)
	if err != nil || len(results) != 3 {
		t.Fatalf("Probe = %v, %v", results, err)
	}
	for _, r := range results {
		if r.Err == nil || r.Info != nil {
			t.Errorf("Probe %s = %+v, want unreachable", r.Name, r)
		}
	}
}
