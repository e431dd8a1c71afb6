package kubeconfig

import (
	"path/filepath"
	"strings"
)

// ContextName is the name of the context, cluster and user that kinc writes
// for a cluster.
func ContextName(cluster string) string { return "kinc-" + cluster }

// Path is the kubeconfig file kinc writes to: explicit (the --kubeconfig
// flag) if set, else the first entry of $KUBECONFIG (a list joined with the
// OS list separator, as kubectl reads it), else ~/.kube/config under home.
// getenv may be nil, meaning an empty environment.
func Path(explicit string, getenv func(string) string, home string) string {
	if explicit != "" {
		return explicit
	}
	if getenv != nil {
		for _, p := range strings.Split(getenv("KUBECONFIG"), string(filepath.ListSeparator)) {
			if p != "" {
				return p
			}
		}
	}
	return filepath.Join(home, ".kube", "config")
}
