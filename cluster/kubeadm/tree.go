package kubeadm

import (
	"fmt"
	"sort"
	"strconv"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// obj is a YAML mapping whose keys keep the order they are written in, so
// the rendered documents read like hand-written ones.
type obj []field

type field struct {
	key   string
	value any
}

// set appends a field; a nil value (or an empty obj) leaves it out, so
// optional fields can be written inline.
func (o obj) set(key string, value any) obj {
	switch v := value.(type) {
	case nil:
		return o
	case obj:
		if len(v) == 0 {
			return o
		}
	}
	return append(o, field{key, value})
}

// node turns a value into a YAML node: obj, map[string]string (sorted),
// []any, []string, string, bool, int, int32, or a ready *yaml.Node.
func node(value any) *yaml.Node {
	switch v := value.(type) {
	case *yaml.Node:
		return v
	case obj:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
		for _, f := range v {
			n.Content = append(n.Content, scalar(f.key, yaml.NodeTagString), node(f.value))
		}
		return n
	case map[string]string:
		o := obj{}
		for _, k := range sortedKeys(v) {
			o = append(o, field{k, v[k]})
		}
		return node(o)
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
		for _, e := range v {
			n.Content = append(n.Content, node(e))
		}
		return n
	case []string:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
		for _, e := range v {
			n.Content = append(n.Content, scalar(e, yaml.NodeTagString))
		}
		return n
	case string:
		return scalar(v, yaml.NodeTagString)
	case bool:
		return scalar(strconv.FormatBool(v), yaml.NodeTagBool)
	case int:
		return scalar(strconv.Itoa(v), yaml.NodeTagInt)
	case int32:
		return scalar(strconv.Itoa(int(v)), yaml.NodeTagInt)
	}
	panic(fmt.Sprintf("kubeadm: no YAML form for %T", value))
}

func scalar(value, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
