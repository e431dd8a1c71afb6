package cli

// defaultNodeImage is the node image create uses when neither --image nor
// the config names one.
const defaultNodeImage = "kinc/node:v1.34.4"

// defaultKubernetesVersion is assumed for node images whose tag does not
// name a version.
const defaultKubernetesVersion = "v1.34.4"
