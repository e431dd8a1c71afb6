package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinc-dev/kinc/cluster"
	"github.com/kinc-dev/kinc/cluster/config"
	"github.com/kinc-dev/kinc/nodeimage"
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
// create --wait, and of delete.
func BenchmarkCreateDelete(b *testing.B) {
	for _, rtName := range testRuntimes() {
		b.Run(rtName, func(b *testing.B) {
			ensureNodeImage(b, rtName)
			ctx := context.Background()
			rt := openTestRuntime(b, rtName)
			timer := &stepTimer{started: map[string]time.Time{}, took: map[string]time.Duration{}}
			var create, del time.Duration
			for i := 0; i < b.N; i++ {
				name := fmt.Sprintf("bench-%s-%d", rtName, i)
				cfg, err := config.Load("", config.WithName(name), config.WithDefaultImage(nodeimage.DefaultImage))
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				err = cluster.Create(ctx, rt, cfg, cluster.WithProgress(timer), cluster.WithWait(5*time.Minute),
					cluster.WithKubeconfig(filepath.Join(b.TempDir(), "config")))
				create += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				start = time.Now()
				if err := cluster.Delete(ctx, rt, name, ""); err != nil {
					b.Fatal(err)
				}
				del += time.Since(start)
			}
			for _, step := range timer.order {
				b.ReportMetric(timer.took[step].Seconds()/float64(b.N), metricName(step))
			}
			b.ReportMetric(create.Seconds()/float64(b.N), "s/create")
			b.ReportMetric(del.Seconds()/float64(b.N), "s/delete")
		})
	}
}
