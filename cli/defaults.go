package cli

import "github.com/kinc-dev/kinc/nodeimage"

// defaultNodeImage is the node image create uses when neither --image nor
// the config names one.
const defaultNodeImage = nodeimage.DefaultImage

// defaultKubernetesVersion is assumed for node images whose tag does not
// name a version.
const defaultKubernetesVersion = nodeimage.DefaultKubernetesVersion
