package cluster

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/cluster/kubeadm"
)

func TestNextNodeName(t *testing.T) {
	for _, tc := range []struct {
		role  config.NodeRole
		taken []string
		want  string
	}{
		{config.WorkerRole, []string{"dev-control-plane"}, "dev-worker"},
		{config.WorkerRole, []string{"dev-control-plane", "dev-worker", "dev-worker2"}, "dev-worker3"},
		// The first free one, not the one after the last.
		{config.WorkerRole, []string{"dev-worker", "dev-worker3"}, "dev-worker2"},
		{config.WorkerRole, []string{"dev-worker2"}, "dev-worker"},
		// Control planes start at 2: NAME-control-plane ran kubeadm init.
		{config.ControlPlaneRole, []string{"dev-control-plane"}, "dev-control-plane2"},
		{config.ControlPlaneRole, nil, "dev-control-plane2"},
		{config.ControlPlaneRole, []string{"dev-control-plane", "dev-control-plane2", "dev-worker3"}, "dev-control-plane3"},
		{config.ControlPlaneRole, []string{"dev-control-plane2", "dev-control-plane4"}, "dev-control-plane3"},
	} {
		if got := nextNodeName("dev", tc.role, tc.taken); got != tc.want {
			t.Errorf("nextNodeName(%s, %v) = %s, want %s", tc.role, tc.taken, got, tc.want)
		}
	}
}

// The new node's kubeadm config comes from NewPlan over joinConfig: it
// must carry the wanted name, join (never init), and keep the cluster-wide
// settings and the API endpoint of the cluster it joins.
func TestJoinConfigPlansTheNewNode(t *testing.T) {
	ha := load(t, header+`featureGates:
  InPlacePodVerticalScaling: true
kubeadmConfigPatches:
- |
  kind: JoinConfiguration
  nodeRegistration:
    kubeletExtraArgs:
      v: "4"
nodes:
- role: control-plane
  extraPortMappings:
  - containerPort: 80
    hostPort: 8080
- role: control-plane
- role: worker
`)
	single := load(t, header+"nodes:\n- role: control-plane\n")
	for _, tc := range []struct {
		cfg    *config.Cluster
		role   config.NodeRole
		name   string
		wantCP bool
	}{
		{ha, config.WorkerRole, "kinc-worker", false},
		{ha, config.WorkerRole, "kinc-worker5", false},
		{ha, config.ControlPlaneRole, "kinc-control-plane2", true},
		{ha, config.ControlPlaneRole, "kinc-control-plane3", true},
		{single, config.WorkerRole, "kinc-worker2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := config.Node{Role: tc.role, Image: "kinc/node:v1.34.4"}
			a := &addition{creation: &creation{cfg: tc.cfg}, live: &liveCluster{name: "kinc"}, want: want, name: tc.name}
			a.fallback = "v1.34.4"
			addrs := map[string]Addresses{tc.name: {IPv4: "10.89.0.9"}}
			if err := a.render(WithAddresses(addrs), WithJoinSecrets("abcdef.0123456789abcdef", strings.Repeat("ab", 32))); err != nil {
				t.Fatal(err)
			}
			if len(a.plan.Nodes) != 1 || a.plan.LoadBalancer != nil {
				t.Fatalf("plan not narrowed to the new node: %+v", a.plan)
			}
			np := a.plan.Nodes[0]
			conf := np.KubeadmConfig
			for _, s := range []string{"kind: JoinConfiguration", "name: " + tc.name, "kubeConfigPath: " + kubeadm.DiscoveryFile, "tlsBootstrapToken: abcdef.0123456789abcdef", "node-ip", "10.89.0.9"} {
				if !strings.Contains(conf, s) {
					t.Errorf("kubeadm config lacks %q:\n%s", s, conf)
				}
			}
			if strings.Contains(conf, "InitConfiguration") {
				t.Errorf("the new node would run kubeadm init:\n%s", conf)
			}
			if got := strings.Contains(conf, "certificateKey: "+strings.Repeat("ab", 32)); got != tc.wantCP {
				t.Errorf("control-plane join section = %v, want %v:\n%s", got, tc.wantCP, conf)
			}
			if tc.cfg == ha && !strings.Contains(conf, "InPlacePodVerticalScaling") {
				t.Errorf("cluster feature gates not in the new node's config:\n%s", conf)
			}
			if tc.cfg == ha && !strings.Contains(conf, "value: \"4\"") {
				t.Errorf("cluster kubeadm patch not applied to the new node:\n%s", conf)
			}
			if len(np.Ports) != 0 {
				t.Errorf("the new node took another node's ports: %v", np.Ports)
			}
			if want := containerLabels("kinc", string(tc.role)); !reflect.DeepEqual(np.Labels, want) {
				t.Errorf("container labels %v, want create's %v", np.Labels, want)
			}
		})
	}
}

func TestBalancerConfigRewrite(t *testing.T) {
	cfg := load(t, header+"nodes:\n- role: control-plane\n- role: control-plane\n- role: control-plane\n")
	cps := map[string]Addresses{
		"kinc-control-plane":  {IPv4: "10.89.0.2"},
		"kinc-control-plane2": {IPv4: "10.89.0.3"},
		"kinc-control-plane3": {IPv4: "10.89.0.4"},
	}
	servers := func(text string) []string {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "server" {
				out = append(out, f[1]+"="+f[2])
			}
		}
		return out
	}
	// As create renders it, so that a rewrite with the same control planes
	// changes nothing and reloads nothing.
	plan, err := NewPlan(cfg, "v1.34.4", WithAddresses(cps))
	if err != nil {
		t.Fatal(err)
	}
	same, err := balancerConfig(cfg, cps)
	if err != nil {
		t.Fatal(err)
	}
	if same != plan.LoadBalancer.Config {
		t.Errorf("rewrite differs from create's config:\n%s\nwant:\n%s", same, plan.LoadBalancer.Config)
	}

	live := &liveCluster{name: "kinc"}
	for _, name := range []string{"kinc-control-plane", "kinc-control-plane2", "kinc-control-plane3", "kinc-worker"} {
		role := "control-plane"
		if strings.HasSuffix(name, "worker") {
			role = "worker"
		}
		st := nodeStatus("kinc", name, role)
		st.IPv4 = cps[name].IPv4
		live.nodes = append(live.nodes, st)
	}
	without, err := balancerConfig(cfg, live.controlPlaneAddresses("kinc-control-plane3"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := servers(without), []string{"kinc-control-plane=10.89.0.2:6443", "kinc-control-plane2=10.89.0.3:6443"}; !reflect.DeepEqual(got, want) {
		t.Errorf("without control-plane3: servers %v, want %v", got, want)
	}

	added := live.controlPlaneAddresses()
	added["kinc-control-plane10"] = Addresses{IPv4: "10.89.0.11"}
	added["kinc-control-plane3"] = Addresses{} // stopped: reached by name
	with, err := balancerConfig(cfg, added)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kinc-control-plane=10.89.0.2:6443", "kinc-control-plane2=10.89.0.3:6443", "kinc-control-plane3=kinc-control-plane3:6443", "kinc-control-plane10=10.89.0.11:6443"}
	if got := servers(with); !reflect.DeepEqual(got, want) {
		t.Errorf("with control-plane10: servers %v, want %v", got, want)
	}

	if _, err := balancerConfig(cfg, live.controlPlaneAddresses("kinc-control-plane", "kinc-control-plane2", "kinc-control-plane3")); err == nil {
		t.Error("a load balancer without control planes was rendered")
	}
}

// The config create keeps in the nodes reads back as it was.
func TestClusterConfigRoundTrip(t *testing.T) {
	c := load(t, header+`name: dev
featureGates:
  InPlacePodVerticalScaling: true
runtimeConfig:
  api/alpha: "true"
networking:
  ipFamily: dual
  kubeProxyMode: ipvs
  dnsSearch: []
kubeadmConfigPatches:
- |
  kind: ClusterConfiguration
  apiServer:
    extraArgs:
      v: "4"
containerdConfigPatches:
- |-
  [plugins."io.containerd.grpc.v1.cri"]
    enable_unprivileged_ports = true
nodes:
- role: control-plane
  labels: {a: b}
- role: worker
  extraPortMappings:
  - containerPort: 80
    hostPort: 0
`)
	data, err := encodeClusterConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := config.Parse("node:"+clusterConfigPath, data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("read back:\n%+v\nwant:\n%+v\nfile:\n%s", back, c, data)
	}
}

func TestParseEtcdMembers(t *testing.T) {
	out := "8e9e05c52164694d, started, c-control-plane, https://10.89.0.2:2380, https://10.89.0.2:2379, false\n" +
		"a8266ecf031671f3, unstarted, , https://10.89.0.5:2380, , true\n"
	got := parseEtcdMembers(out)
	want := []etcdMember{
		{id: "8e9e05c52164694d", name: "c-control-plane", peerURLs: "https://10.89.0.2:2380"},
		{id: "a8266ecf031671f3", name: "", peerURLs: "https://10.89.0.5:2380"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseEtcdMembers = %+v, want %+v", got, want)
	}
}
