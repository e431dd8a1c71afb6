package kubeadm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	sigsyaml "sigs.k8s.io/yaml"
)

// ContainerdConfig applies the cluster's containerd patches to a node's
// config.toml: each TOML patch merged as a tree (tables merged
// recursively, anything else replaced), then each RFC 6902 patch (YAML or
// JSON) applied to the config seen as JSON. With no patches the base comes
// back untouched, comments and all; otherwise the TOML is re-encoded with
// sorted keys.
func ContainerdConfig(base string, patches, json6902 []string) (string, error) {
	if len(patches) == 0 && len(json6902) == 0 {
		return base, nil
	}
	tree := map[string]any{}
	if _, err := toml.Decode(base, &tree); err != nil {
		return "", fmt.Errorf("parsing containerd config: %w", err)
	}
	for i, p := range patches {
		patch := map[string]any{}
		if _, err := toml.Decode(p, &patch); err != nil {
			return "", fmt.Errorf("parsing containerdConfigPatches[%d]: %w", i, err)
		}
		mergeTables(tree, patch)
	}
	for i, p := range json6902 {
		var err error
		if tree, err = applyJSON6902(tree, p); err != nil {
			return "", fmt.Errorf("applying containerdConfigPatchesJSON6902[%d]: %w", i, err)
		}
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(tree); err != nil {
		return "", fmt.Errorf("writing containerd config: %w", err)
	}
	return b.String(), nil
}

// mergeTables merges src into dst: a table into a table recursively,
// any other value replacing what dst had.
func mergeTables(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeTables(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

func applyJSON6902(tree map[string]any, text string) (map[string]any, error) {
	ops, err := sigsyaml.YAMLToJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("parsing patch: %w", err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		return nil, fmt.Errorf("parsing patch: %w", err)
	}
	doc, err := json.Marshal(tree)
	if err != nil {
		return nil, err
	}
	out, err := patch.Apply(doc)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(out))
	d.UseNumber() // keep integers integers: TOML tells 2 from 2.0
	var patched map[string]any
	if err := d.Decode(&patched); err != nil {
		return nil, err
	}
	return fromJSON(patched).(map[string]any), nil
}

// fromJSON turns decoded JSON back into TOML's value types.
func fromJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = fromJSON(e)
		}
		return v
	case []any:
		tables := make([]map[string]any, 0, len(v))
		for i, e := range v {
			v[i] = fromJSON(e)
			if t, ok := v[i].(map[string]any); ok {
				tables = append(tables, t)
			}
		}
		// An array of nothing but tables is written as [[array.of.tables]].
		if len(v) > 0 && len(tables) == len(v) {
			return tables
		}
		return v
	case json.Number:
		if !strings.ContainsAny(v.String(), ".eE") {
			if i, err := v.Int64(); err == nil {
				return i
			}
		}
		f, _ := v.Float64()
		return f
	}
	return v
}
