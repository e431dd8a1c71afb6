package kubeadm

import (
	"fmt"
	"strconv"
	"strings"
)

// The API groups of the documents a node's kubeadm config holds.
const (
	kubeadmGroup   = "kubeadm.k8s.io"
	kubeletGroup   = "kubelet.config.k8s.io"
	kubeProxyGroup = "kubeproxy.config.k8s.io"

	kubeletAPIVersion   = kubeletGroup + "/v1beta1"
	kubeProxyAPIVersion = kubeProxyGroup + "/v1alpha1"
)

// version is the part of a Kubernetes version the rendering depends on.
type version struct{ major, minor int }

func (v version) atLeast(minor int) bool { return v.major > 1 || v.minor >= minor }

// parseVersion reads "v1.34.4", "1.34" or "v1.35.0-alpha.1".
func parseVersion(s string) (version, error) {
	parts := strings.SplitN(strings.TrimPrefix(s, "v"), ".", 3)
	if len(parts) < 2 {
		return version{}, fmt.Errorf("parsing Kubernetes version %q: want vMAJOR.MINOR.PATCH", s)
	}
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return version{}, fmt.Errorf("parsing Kubernetes version %q: %w", s, err)
	}
	minorText, _, _ := strings.Cut(parts[1], "-")
	minor, err := strconv.Atoi(minorText)
	if err != nil {
		return version{}, fmt.Errorf("parsing Kubernetes version %q: %w", s, err)
	}
	return version{major, minor}, nil
}

// kubeadmAPIVersion is the newest kubeadm API a Kubernetes version reads:
// v1beta4 since 1.31, v1beta3 since 1.23 (kubeadm 1.22 had it as new),
// v1beta2 since 1.15.
func kubeadmAPIVersion(v version) (string, error) {
	switch {
	case v.atLeast(31):
		return "v1beta4", nil
	case v.atLeast(23):
		return "v1beta3", nil
	case v.atLeast(15):
		return "v1beta2", nil
	}
	return "", fmt.Errorf("kubernetes v%d.%d is too old: kinc renders kubeadm configs for v1.15 and later", v.major, v.minor)
}

// kubeadmVersions orders kubeadm's API versions; a version not listed
// sorts after all of them, as a newer one would.
var kubeadmVersions = []string{"v1alpha1", "v1alpha2", "v1alpha3", "v1beta1", "v1beta2", "v1beta3", "v1beta4"}

func kubeadmVersionRank(v string) int {
	for i, known := range kubeadmVersions {
		if v == known {
			return i
		}
	}
	return len(kubeadmVersions)
}

// listArgs says whether a kubeadm API version writes extra arguments as
// lists of {name, value} (v1beta4 on) rather than maps.
func listArgs(apiVersion string) bool {
	return kubeadmVersionRank(apiVersion) >= kubeadmVersionRank("v1beta4")
}

// splitAPIVersion splits "group/version"; the core group has no slash.
func splitAPIVersion(apiVersion string) (group, version string) {
	if g, v, ok := strings.Cut(apiVersion, "/"); ok {
		return g, v
	}
	return "", apiVersion
}
