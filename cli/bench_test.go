package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/cluster"
	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/nodeimage"
	"github.com/kinc-dev/kinc/runtime"
)

// stepTimer records how long each create step takes.
type stepTimer struct {
	mu      sync.Mutex
	started map[string]time.Time
	took    map[string]time.Duration
	order   []string
}

func (s *stepTimer) Start(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started[step] = time.Now()
}

func (s *stepTimer) End(step string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, seen := s.took[step]; !seen {
		s.order = append(s.order, step)
	}
	s.took[step] += time.Since(s.started[step])
}

// metricName turns "Waiting ≤ 5m0s for control-plane = Ready" into
// "s/waiting" and "Starting control-plane" into "s/starting-control-plane".
func metricName(step string) string {
	if i := strings.IndexAny(step, "(≤"); i > 0 {
		step = step[:i]
	}
	return "s/" + strings.Join(strings.Fields(strings.ToLower(step)), "-")
}

// BenchmarkCreateDelete creates and deletes a single-node cluster on each
// test runtime and reports the time of every create step, of the whole
// create --wait, and of delete, and the memory of each node container once
// the cluster has settled.
func BenchmarkCreateDelete(b *testing.B) {
	for _, rtName := range testRuntimes() {
		b.Run(rtName, func(b *testing.B) {
			ensureNodeImage(b, rtName)
			rt := openTestRuntime(b, rtName)
			timer := &stepTimer{started: map[string]time.Time{}, took: map[string]time.Duration{}}
			var total benchResult
			for i := 0; i < b.N; i++ {
				total.add(benchCluster(b, rt, fmt.Sprintf("bench-%s-%d", rtName, i), "", timer))
			}
			for _, step := range timer.order {
				b.ReportMetric(timer.took[step].Seconds()/float64(b.N), metricName(step))
			}
			total.report(b, "")
		})
	}
}

// BenchmarkHACreate creates the blog's HA cluster (three control planes, a
// worker, the load balancer) and a single-node cluster on the first test
// runtime, one after the other, and reports both create --wait times, their
// ratio and the memory of the HA cluster's containers once settled.
func BenchmarkHACreate(b *testing.B) {
	rtName := testRuntimes()[0]
	ensureNodeImage(b, rtName)
	rt := openTestRuntime(b, rtName)
	ha, err := os.ReadFile("../testdata/blog-v1alpha2-ha.yaml")
	if err != nil {
		b.Fatal(err)
	}
	var single, multi benchResult
	timer := &stepTimer{started: map[string]time.Time{}, took: map[string]time.Duration{}}
	for i := 0; i < b.N; i++ {
		single.add(benchCluster(b, rt, fmt.Sprintf("bench-single-%d", i), "", nil))
		multi.add(benchCluster(b, rt, fmt.Sprintf("bench-ha-%d", i), string(ha), timer))
	}
	for _, step := range timer.order {
		b.ReportMetric(timer.took[step].Seconds()/float64(b.N), strings.Replace(metricName(step), "s/", "s/ha-", 1))
	}
	single.report(b, "single-")
	multi.report(b, "ha-")
	b.ReportMetric(multi.create.Seconds()/single.create.Seconds(), "x/ha-over-single")
}

// benchResult sums what benchCluster measures.
type benchResult struct {
	runs, nodes      int
	create, del      time.Duration
	memory, maxNodeM uint64
}

func (r *benchResult) add(o benchResult) {
	r.runs += o.runs
	r.nodes += o.nodes
	r.create += o.create
	r.del += o.del
	r.memory += o.memory
	r.maxNodeM = max(r.maxNodeM, o.maxNodeM)
}

func (r benchResult) report(b *testing.B, prefix string) {
	b.ReportMetric(r.create.Seconds()/float64(r.runs), "s/"+prefix+"create")
	b.ReportMetric(r.del.Seconds()/float64(r.runs), "s/"+prefix+"delete")
	b.ReportMetric(float64(r.memory)/float64(r.nodes)/(1<<20), "MiB/"+prefix+"node-memory")
	b.ReportMetric(float64(r.maxNodeM)/(1<<20), "MiB/"+prefix+"node-memory-max")
}

// benchCluster creates the cluster of cfgYAML (empty: one node) with
// --wait, lets it settle, reads the memory of every container of it and
// deletes it. Settling and reading memory are not timed.
func benchCluster(b *testing.B, rt runtime.Runtime, name, cfgYAML string, progress cluster.Progress) benchResult {
	ctx := context.Background()
	info, err := rt.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var cfg *config.Cluster
	if cfgYAML == "" {
		cfg, err = config.Load("", config.WithName(name), config.WithDefaultImage(nodeimage.DefaultImage))
	} else {
		cfg, err = config.Parse("bench.yaml", []byte(cfgYAML), config.WithName(name), config.WithDefaultImage(nodeimage.DefaultImage))
	}
	if err != nil {
		b.Fatal(err)
	}
	opts := []cluster.CreateOption{cluster.WithWait(8 * time.Minute), cluster.WithKubeconfig(filepath.Join(b.TempDir(), "config"))}
	if progress != nil {
		opts = append(opts, cluster.WithProgress(progress))
	}
	r := benchResult{runs: 1}
	start := time.Now()
	err = cluster.Create(ctx, rt, cfg, opts...)
	r.create = time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	// A failure below must not leave the cluster running.
	b.Cleanup(func() { _ = cluster.Delete(context.Background(), rt, name, "") })
	if err := settle(ctx, rt, config.NodeNames(cfg)[0]); err != nil {
		b.Fatal(err)
	}
	nodes, err := cluster.Nodes(ctx, rt, name)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range nodes {
		m, err := nodeMemory("/sys/fs/cgroup", info.CgroupVersion, n.ID)
		if err != nil {
			b.Fatalf("memory of %s: %v", n.Name, err)
		}
		r.memory += m
		r.maxNodeM = max(r.maxNodeM, m)
		r.nodes++
	}
	b.StartTimer()
	start = time.Now()
	if err := cluster.Delete(ctx, rt, name, ""); err != nil {
		b.Fatal(err)
	}
	r.del = time.Since(start)
	return r
}

// settleTime is how long a cluster runs, once every kube-system pod is
// Ready, before its memory is read: start-up's peaks pass by then.
const settleTime = 30 * time.Second

// settle waits until every kube-system pod is Running and Ready, asking
// kubectl in the control-plane node, then settleTime more.
func settle(ctx context.Context, rt runtime.Runtime, controlPlane string) error {
	const pods = `jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`
	cmd := []string{"kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "get", "pods", "-n", "kube-system", "-o", pods}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var out bytes.Buffer
		err := rt.Exec(ctx, controlPlane, runtime.ExecSpec{Cmd: cmd, Stdout: &out})
		if err == nil && allPodsReady(out.String()) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-system pods not all Ready after 5m (%v):\n%s", err, out.String())
		}
		time.Sleep(2 * time.Second)
	}
	time.Sleep(settleTime)
	return nil
}

// allPodsReady reads lines of "name phase ready" and wants at least one,
// each Running and Ready.
func allPodsReady(lines string) bool {
	seen := 0
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != "Running" || f[2] != "True" {
			return false
		}
		seen++
	}
	return seen > 0
}

func TestAllPodsReady(t *testing.T) {
	tests := []struct {
		out  string
		want bool
	}{
		{"coredns-1 Running True\netcd Running True\n", true},
		{"coredns-1 Running False\netcd Running True\n", false},
		{"coredns-1 Pending \n", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := allPodsReady(tc.out); got != tc.want {
			t.Errorf("allPodsReady(%q) = %v, want %v", tc.out, got, tc.want)
		}
	}
}
