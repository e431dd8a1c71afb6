package internal_check

import (
	_ "github.com/containerd/containerd"
	_ "github.com/containerd/go-cni"
	_ "github.com/containers/podman/v4/pkg/bindings/containers"
	_ "github.com/containers/podman/v4/pkg/bindings/images"
	_ "github.com/containers/podman/v4/pkg/bindings/network"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/moby/moby/client"
	_ "github.com/urfave/cli/v2"
	_ "gopkg.in/evanphx/json-patch.v4"
	_ "sigs.k8s.io/kustomize/kyaml/yaml/merge2"
)
