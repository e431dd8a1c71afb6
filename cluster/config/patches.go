package config

import (
	"fmt"

	"github.com/BurntSushi/toml"
	yaml "go.yaml.in/yaml/v3"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	sigsyaml "sigs.k8s.io/yaml"
)

// Patches are only parsed here, so that a typo fails before any container
// exists; cluster/kubeadm applies them.

func (v *validator) clusterPatches(c *Cluster) {
	v.kubeadmPatches("", c.KubeadmConfigPatches, c.KubeadmConfigPatchesJSON6902)
	for i, p := range c.ContainerdConfigPatches {
		if err := checkTOML(p); err != nil {
			v.errorf(indexPath("containerdConfigPatches", i), "not valid TOML: %v; write a fragment of containerd's config.toml", err)
		}
	}
	for i, p := range c.ContainerdConfigPatchesJSON6902 {
		if err := checkJSON6902(p); err != nil {
			v.errorf(indexPath("containerdConfigPatchesJSON6902", i), "%v", err)
		}
	}
}

// kubeadmPatches checks the patches of the cluster (prefix "") or of a node.
func (v *validator) kubeadmPatches(prefix string, merge []string, json6902 []PatchJSON6902) {
	for i, p := range merge {
		if err := checkMergePatch(p); err != nil {
			v.errorf(indexPath(childPath(prefix, "kubeadmConfigPatches"), i), "%v", err)
		}
	}
	for i, p := range json6902 {
		path := indexPath(childPath(prefix, "kubeadmConfigPatchesJSON6902"), i)
		if p.Version == "" {
			v.errorf(path+".version", "missing; name the version of the kubeadm document to patch, such as v1beta3")
		}
		if p.Kind == "" {
			v.errorf(path+".kind", "missing; name the kind of the kubeadm document to patch, such as ClusterConfiguration")
		}
		if err := checkJSON6902(p.Patch); err != nil {
			v.errorf(path+".patch", "%v", err)
		}
	}
}

// checkMergePatch wants a YAML mapping that names the kind it patches.
func checkMergePatch(text string) error {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		line, msg := yamlLine(err)
		return fmt.Errorf("not valid YAML (line %d of the patch: %s); write the patch as a YAML mapping with the kind of the kubeadm document it changes", line, msg)
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = *n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("not a YAML mapping; write the patch as a mapping with the kind of the kubeadm document it changes")
	}
	if k := scalarField(&n, "kind"); k == nil || k.Value == "" {
		return fmt.Errorf("no kind; say which kubeadm document this patches, such as kind: ClusterConfiguration")
	}
	return nil
}

var patchOps = map[string]bool{"add": true, "remove": true, "replace": true, "move": true, "copy": true, "test": true}

// checkJSON6902 wants an RFC 6902 patch, written in YAML or JSON, whose
// operations each have what their op needs.
func checkJSON6902(text string) error {
	const how = "write a list of operations such as [{op: add, path: /a/b, value: c}]"
	j, err := sigsyaml.YAMLToJSON([]byte(text))
	if err != nil {
		return fmt.Errorf("not valid YAML or JSON (%v); %s", err, how)
	}
	ops, err := jsonpatch.DecodePatch(j)
	if err != nil {
		return fmt.Errorf("not an RFC 6902 patch (%v); %s", err, how)
	}
	if len(ops) == 0 {
		return fmt.Errorf("empty patch; %s", how)
	}
	for i, op := range ops {
		kind := op.Kind()
		if !patchOps[kind] {
			return fmt.Errorf("operation %d: unknown op %q; use add, remove, replace, move, copy or test", i, kind)
		}
		if _, err := op.Path(); err != nil {
			return fmt.Errorf("operation %d (%s): no path; give the JSON pointer it acts on", i, kind)
		}
		if _, err := op.From(); err != nil && (kind == "move" || kind == "copy") {
			return fmt.Errorf("operation %d (%s): no from; give the JSON pointer to take from", i, kind)
		}
		if _, has := op["value"]; !has && (kind == "add" || kind == "replace" || kind == "test") {
			return fmt.Errorf("operation %d (%s): no value", i, kind)
		}
	}
	return nil
}

func checkTOML(text string) error {
	var m map[string]any
	_, err := toml.Decode(text, &m)
	return err
}
