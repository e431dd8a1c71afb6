package cluster

import (
	"testing"

	"github.com/kinc-dev/kinc/cluster/config"
)

// Background imports unpack what the node will run, by its role and
// whether the cluster has workers for DNS and storage.
func TestRunsUnpacksWhatTheNodeRuns(t *testing.T) {
	archives := map[string]string{
		"apiserver": "/kind/images/registry.k8s.io_kube-apiserver_v1.34.4.tar",
		"etcd":      "/kind/images/registry.k8s.io_etcd_3.6.5-0.tar",
		"coredns":   "/kind/images/registry.k8s.io_coredns_coredns_v1.12.1.tar",
		"storage":   "/kind/images/docker.io_kinc_local-path-provisioner_v0.0.30.tar",
		"proxy+cni": "/kind/images/registry.k8s.io_kube-proxy_v1.34.4+docker.io_kinc_flannel_v0.28.10.tar",
		"pause":     "/kind/images/registry.k8s.io_pause_3.10.1.tar",
		"extra":     "/kind/images/example.com_app_v1.tar",
	}
	withWorkers := load(t, header+"nodes:\n- role: control-plane\n- role: control-plane\n- role: worker\n")
	noWorkers := load(t, header+"nodes:\n- role: control-plane\n- role: control-plane\n")
	for _, tc := range []struct {
		name   string
		cfg    *config.Cluster
		role   config.NodeRole
		unpack []string
	}{
		{"control plane, workers elsewhere", withWorkers, config.ControlPlaneRole, []string{"apiserver", "etcd", "proxy+cni", "pause", "extra"}},
		{"worker", withWorkers, config.WorkerRole, []string{"coredns", "storage", "proxy+cni", "pause", "extra"}},
		{"control plane, no workers", noWorkers, config.ControlPlaneRole, []string{"apiserver", "etcd", "coredns", "storage", "proxy+cni", "pause", "extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := map[string]bool{}
			for _, k := range tc.unpack {
				want[k] = true
			}
			runs := (&creation{cfg: tc.cfg}).runs(tc.role)
			for k, f := range archives {
				if got := runs(f); got != want[k] {
					t.Errorf("unpack %s = %v, want %v", k, got, want[k])
				}
			}
		})
	}
}
