package gobuild

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Components are the Kubernetes programs Kubernetes can build.
var Components = []string{
	"kubeadm", "kubelet", "kubectl",
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
}

// KubernetesModule is the module Kubernetes builds from.
const KubernetesModule = "k8s.io/kubernetes"

var kubeVersion = regexp.MustCompile(`^v([0-9]+)\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.-]+)?$`)

// Kubernetes builds the given components (all of Components when none are
// given) of Kubernetes version (vX.Y.Z) from the Go module proxy and
// returns component -> binary path. An unknown version fails with an
// *UnavailableError and leaves the cache as it was.
//
// The binaries report version exactly as release binaries do (kubeadm
// compares its own version with the control plane's), with the module's
// publish time as build date.
func Kubernetes(ctx context.Context, version string, components []string, opts ...Option) (map[string]string, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	m, err := o.kubernetesModule(ctx, version, components)
	if err != nil {
		return nil, err
	}
	return build(ctx, o, m)
}

// KubernetesModuleFor describes the build Kubernetes does, for callers that
// need the module (to hash it, or build it with Build).
func KubernetesModuleFor(ctx context.Context, version string, components []string, opts ...Option) (Module, error) {
	o, err := newOptions(opts)
	if err != nil {
		return Module{}, err
	}
	return o.kubernetesModule(ctx, version, components)
}

func (o *options) kubernetesModule(ctx context.Context, version string, components []string) (Module, error) {
	v := kubeVersion.FindStringSubmatch(version)
	if v == nil {
		return Module{}, fmt.Errorf("building Kubernetes: version %q is not of the form vX.Y.Z", version)
	}
	if len(components) == 0 {
		components = Components
	}
	pkgs := make([]string, 0, len(components))
	for _, c := range components {
		if !slices.Contains(Components, c) {
			return Module{}, fmt.Errorf("building Kubernetes: unknown component %q (known: %v)", c, Components)
		}
		pkgs = append(pkgs, KubernetesModule+"/cmd/"+c)
	}
	published, err := o.publishTime(ctx, "Kubernetes", KubernetesModule, version)
	if err != nil {
		return Module{}, err
	}
	major, minor, patch, pre := v[1], v[2], v[3], v[4]
	var ldflags []string
	ldflags = append(ldflags, "-s", "-w")
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		ldflags = append(ldflags,
			"-X", pkg+".gitVersion="+version,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean",
			"-X", pkg+".buildDate="+published.Format(time.RFC3339),
		)
	}
	return Module{
		Name:     "Kubernetes",
		Path:     KubernetesModule,
		Version:  version,
		Packages: pkgs,
		// Staging modules (k8s.io/api, ...) are published as v0.Y.Z.
		LocalReplaceVersion: fmt.Sprintf("v0.%s.%s%s", minor, patch, pre),
		LDFlags:             ldflags,
		Tags:                []string{"selinux", "notest", "grpcnotrace"},
	}, nil
}
