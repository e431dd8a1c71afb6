package runtime

import (
	"fmt"
	"sort"
)

// Labels kinc puts on what it creates, so that list and delete find them
// again whatever the backend.
const (
	// LabelCluster names the cluster a node or network belongs to.
	LabelCluster = "dev.kinc.cluster"
	// LabelRole is a node's role: control-plane, worker or load-balancer.
	LabelRole = "dev.kinc.role"
	// LabelNode, on a volume, names the container that owns it; the volume
	// is deleted with that container.
	LabelNode = "dev.kinc.node"
)

// LabelFilters turns a label map into "key=value" filters, sorted so that
// requests are reproducible. An empty value matches the key alone.
func LabelFilters(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		if v == "" {
			out = append(out, k)
			continue
		}
		out = append(out, fmt.Sprintf("%s=%s", k, v))
	}
	sort.Strings(out)
	return out
}

// MatchLabels tells whether have carries every label of want (an empty value
// in want matches any value).
func MatchLabels(have, want map[string]string) bool {
	for k, v := range want {
		got, ok := have[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
