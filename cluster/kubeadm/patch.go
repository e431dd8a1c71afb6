package kubeadm

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	"sigs.k8s.io/kustomize/kyaml/yaml/merge2"
	"sigs.k8s.io/kustomize/kyaml/yaml/walk"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kinc-dev/kinc/cluster/config"
)

// mergePatch applies a strategic-merge patch to every document of the same
// kind and API group. The patch's version is ignored, as users copy
// patches from old docs; a kubeadm patch is first reshaped to the rendered
// kubeadm API version, and the document keeps its own apiVersion.
//
// A patch text may hold several YAML documents, each one patch.
func mergePatch(docs []*yaml.RNode, text string) ([]string, error) {
	d := yaml.NewDecoder(strings.NewReader(text))
	var warnings []string
	for {
		var n yaml.Node
		err := d.Decode(&n)
		if errors.Is(err, io.EOF) {
			return warnings, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parsing patch: %w", err)
		}
		patch := yaml.NewRNode(&n)
		if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
			patch = yaml.NewRNode(n.Content[0])
		}
		if yaml.IsMissingOrNull(patch) {
			continue
		}
		w, err := mergeOne(docs, patch)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, w...)
	}
}

func mergeOne(docs []*yaml.RNode, patch *yaml.RNode) ([]string, error) {
	kind := patch.GetKind()
	if kind == "" {
		return nil, fmt.Errorf("patch names no kind")
	}
	group, patchVersion := splitAPIVersion(patch.GetApiVersion())
	hasAPIVersion := patch.GetApiVersion() != ""

	var warnings []string
	matched := false
	for i, doc := range docs {
		docGroup, docVersion := splitAPIVersion(doc.GetApiVersion())
		if doc.GetKind() != kind || (hasAPIVersion && docGroup != group) {
			continue
		}
		matched = true
		p := patch.Copy()
		// Patches copied from kind's docs carry metadata (name: config),
		// which the documents must not have.
		if _, err := p.Pipe(yaml.Clear("metadata")); err != nil {
			return nil, err
		}
		if docGroup == kubeadmGroup {
			warnings = append(warnings, convert(p, kind, patchVersion, docVersion)...)
		}
		if hasAPIVersion {
			if err := p.PipeE(yaml.SetField("apiVersion", yaml.NewStringRNode(doc.GetApiVersion()))); err != nil {
				return nil, err
			}
		}
		var labels string
		if n := nodeLabels(doc); n != nil {
			labels = n.Value // the merge may rewrite the node itself
		}
		target := doc.Copy()
		lists := takeUnkeyedLists(target, p, nil)
		merged, err := walk.Walker{
			Sources:               []*yaml.RNode{target, p},
			Visitor:               merge2.Merger{},
			InferAssociativeLists: true, // lists of {name, value} merge by name
		}.Walk()
		if err != nil {
			return nil, fmt.Errorf("merging patch into %s: %w", kind, err)
		}
		if err := putLists(merged, lists); err != nil {
			return nil, fmt.Errorf("merging patch into %s: %w", kind, err)
		}
		keepNodeLabels(merged, labels)
		docs[i] = merged
	}
	if !matched && !renderedKind(group, kind, hasAPIVersion) {
		warnings = append(warnings, fmt.Sprintf("patch of %s %q matches no document kinc renders", kind, patch.GetApiVersion()))
	}
	return warnings, nil
}

// unkeyedList is a list whose items kyaml's merge cannot pair, because
// they have no "name" (nodeRegistration.taints) or there are none: the
// patch's list replaces the document's, as in a strategic merge, and a
// list the patch leaves alone is kept.
type unkeyedList struct {
	path  []string
	value *yaml.RNode
}

// takeUnkeyedLists removes such lists from doc's mappings, and the
// patch's value at the same place, and returns what the merged document
// must hold there.
func takeUnkeyedLists(doc, patch *yaml.RNode, path []string) []unkeyedList {
	names, err := doc.Fields()
	if err != nil { // not a mapping
		return nil
	}
	var out []unkeyedList
	for _, name := range names {
		v := doc.Field(name).Value
		var pv *yaml.RNode
		if patch != nil && patch.YNode().Kind == yaml.MappingNode {
			if f := patch.Field(name); f != nil {
				pv = f.Value
			}
		}
		at := append(slices.Clone(path), name)
		switch {
		case v.YNode().Kind == yaml.MappingNode:
			out = append(out, takeUnkeyedLists(v, pv, at)...)
		case unkeyed(v):
			keep := v
			if pv != nil {
				keep = pv
				_ = patch.PipeE(yaml.Clear(name))
			}
			_ = doc.PipeE(yaml.Clear(name))
			out = append(out, unkeyedList{path: at, value: keep})
		}
	}
	return out
}

// unkeyed tells a list the merge cannot pair items of: an empty one (it
// finds no key in it: kinc renders `taints: []`), or one of objects
// without a name.
func unkeyed(n *yaml.RNode) bool {
	y := n.YNode()
	if y.Kind != yaml.SequenceNode {
		return false
	}
	if len(y.Content) == 0 {
		return true
	}
	return y.Content[0].Kind == yaml.MappingNode && n.GetAssociativeKey() == ""
}

// putLists sets the lists takeUnkeyedLists took back into the merged
// document.
func putLists(doc *yaml.RNode, lists []unkeyedList) error {
	for _, l := range lists {
		parent, err := doc.Pipe(yaml.LookupCreate(yaml.MappingNode, l.path[:len(l.path)-1]...))
		if err != nil {
			return err
		}
		if err := parent.PipeE(yaml.SetField(l.path[len(l.path)-1], l.value)); err != nil {
			return err
		}
	}
	return nil
}

// json6902Patch applies an RFC 6902 patch to every document of the same
// group and kind. The patch's paths are written for the shape of its own
// version, so a kubeadm document is reshaped to that version for the patch
// and back afterwards.
func json6902Patch(docs []*yaml.RNode, p config.PatchJSON6902) ([]string, error) {
	j, err := sigsyaml.YAMLToJSON([]byte(p.Patch))
	if err != nil {
		return nil, fmt.Errorf("parsing patch: %w", err)
	}
	ops, err := jsonpatch.DecodePatch(j)
	if err != nil {
		return nil, fmt.Errorf("parsing patch: %w", err)
	}
	var warnings []string
	matched := false
	for i, doc := range docs {
		docGroup, docVersion := splitAPIVersion(doc.GetApiVersion())
		if doc.GetKind() != p.Kind || docGroup != p.Group {
			continue
		}
		matched = true
		work := doc.Copy()
		reshape := docGroup == kubeadmGroup && p.Version != "" && p.Version != docVersion
		if reshape {
			convertArgs(work, p.Kind, listArgs(p.Version))
		}
		in, err := work.MarshalJSON()
		if err != nil {
			return nil, err
		}
		out, err := ops.Apply(in)
		if err != nil {
			return nil, fmt.Errorf("applying patch to %s: %w", p.Kind, err)
		}
		patched, err := yaml.ConvertJSONToYamlNode(string(out))
		if err != nil {
			return nil, err
		}
		if reshape {
			convertArgs(patched, p.Kind, listArgs(docVersion))
		}
		keepOrder(doc.YNode(), patched.YNode())
		docs[i] = patched
	}
	if !matched && !renderedKind(p.Group, p.Kind, true) {
		warnings = append(warnings, fmt.Sprintf("patch of %s %q matches no document kinc renders", p.Kind, p.Group+"/"+p.Version))
	}
	return warnings, nil
}

// nodeLabels reads the node-labels kubelet argument of an Init or Join
// document, in either shape.
func nodeLabels(doc *yaml.RNode) *yaml.Node {
	n, err := doc.Pipe(yaml.Lookup("nodeRegistration", "kubeletExtraArgs"))
	if err != nil || n == nil {
		return nil
	}
	y := n.YNode()
	if y.Kind == yaml.MappingNode {
		return fieldOf(y, "node-labels")
	}
	for _, e := range y.Content {
		if name := fieldOf(e, "name"); name != nil && name.Value == "node-labels" {
			return fieldOf(e, "value")
		}
	}
	return nil
}

// keepNodeLabels adds the labels kinc rendered (from the node's labels in
// the cluster config) back to a node-labels argument a merge patch
// replaced, the patch winning for a label both set: kind's docs teach
// ingress-ready=true as such a patch, and it should not erase the
// labels the user wrote on the node.
func keepNodeLabels(doc *yaml.RNode, before string) {
	after := nodeLabels(doc)
	if after == nil || before == after.Value || before == "" {
		return
	}
	value := after.Value
	set := map[string]bool{}
	for _, l := range strings.Split(after.Value, ",") {
		k, _, _ := strings.Cut(l, "=")
		set[strings.TrimSpace(k)] = true
	}
	for _, l := range strings.Split(before, ",") {
		if k, _, _ := strings.Cut(l, "="); !set[k] {
			value += "," + l
		}
	}
	after.Value = strings.TrimPrefix(value, ",")
}

// keepOrder puts the keys of every mapping in patched in the order they
// have in orig, new keys last: the JSON round trip sorted them.
func keepOrder(orig, patched *yaml.Node) {
	switch {
	case orig.Kind == yaml.MappingNode && patched.Kind == yaml.MappingNode:
		rank := map[string]int{}
		for i := 0; i+1 < len(orig.Content); i += 2 {
			rank[orig.Content[i].Value] = i/2 + 1
		}
		type pair struct{ k, v *yaml.Node }
		var pairs []pair
		for i := 0; i+1 < len(patched.Content); i += 2 {
			pairs = append(pairs, pair{patched.Content[i], patched.Content[i+1]})
		}
		sort.SliceStable(pairs, func(a, b int) bool {
			ra, rb := rank[pairs[a].k.Value], rank[pairs[b].k.Value]
			if ra == 0 || rb == 0 {
				return ra != 0 && rb == 0
			}
			return ra < rb
		})
		patched.Content = patched.Content[:0]
		for _, p := range pairs {
			patched.Content = append(patched.Content, p.k, p.v)
			if o := fieldOf(orig, p.k.Value); o != nil {
				keepOrder(o, p.v)
			}
		}
	case orig.Kind == yaml.SequenceNode && patched.Kind == yaml.SequenceNode:
		for i := 0; i < len(orig.Content) && i < len(patched.Content); i++ {
			keepOrder(orig.Content[i], patched.Content[i])
		}
	}
}

// renderedKinds are the documents some node's config holds, by group.
var renderedKinds = map[string][]string{
	kubeadmGroup:   {"InitConfiguration", "ClusterConfiguration", "JoinConfiguration"},
	kubeletGroup:   {"KubeletConfiguration"},
	kubeProxyGroup: {"KubeProxyConfiguration"},
}

// renderedKind says whether a patch can match a document of some node. A
// patch that matches nothing on this node is normal (a ClusterConfiguration
// patch on a joining node), so only a patch no node can use is worth a
// warning: most likely a typo in its kind or group.
func renderedKind(group, kind string, checkGroup bool) bool {
	for g, kinds := range renderedKinds {
		if checkGroup && g != group {
			continue
		}
		for _, k := range kinds {
			if k == kind {
				return true
			}
		}
	}
	return false
}

// argPaths are where each kubeadm kind keeps extra arguments: maps before
// v1beta4, lists of {name, value} since.
var argPaths = map[string][][]string{
	"ClusterConfiguration": {
		{"apiServer", "extraArgs"},
		{"controllerManager", "extraArgs"},
		{"scheduler", "extraArgs"},
		{"etcd", "local", "extraArgs"},
	},
	"InitConfiguration": {{"nodeRegistration", "kubeletExtraArgs"}},
	"JoinConfiguration": {{"nodeRegistration", "kubeletExtraArgs"}},
}

// v1alpha3Moves are the ClusterConfiguration fields v1beta1 moved under
// the component they configure.
var v1alpha3Moves = []struct{ from, to []string }{
	{[]string{"apiServerExtraArgs"}, []string{"apiServer", "extraArgs"}},
	{[]string{"apiServerExtraVolumes"}, []string{"apiServer", "extraVolumes"}},
	{[]string{"apiServerCertSANs"}, []string{"apiServer", "certSANs"}},
	{[]string{"controllerManagerExtraArgs"}, []string{"controllerManager", "extraArgs"}},
	{[]string{"controllerManagerExtraVolumes"}, []string{"controllerManager", "extraVolumes"}},
	{[]string{"schedulerExtraArgs"}, []string{"scheduler", "extraArgs"}},
	{[]string{"schedulerExtraVolumes"}, []string{"scheduler", "extraVolumes"}},
}

// convert reshapes a kubeadm document (or patch) of one kind from API
// version from to version to, for the fields users commonly patch. It
// returns what could not be carried over.
func convert(rn *yaml.RNode, kind, from, to string) []string {
	var warnings []string
	older := func(v string) bool { return kubeadmVersionRank(from) < kubeadmVersionRank(v) }
	newer := func(v string) bool { return kubeadmVersionRank(to) >= kubeadmVersionRank(v) }

	if kind == "ClusterConfiguration" && older("v1beta1") && newer("v1beta1") {
		for _, m := range v1alpha3Moves {
			move(rn, m.from, m.to)
		}
	}
	if kind == "ClusterConfiguration" && older("v1beta3") && newer("v1beta3") {
		for _, path := range [][]string{{"dns", "type"}, {"useHyperKubeImage"}} {
			if drop(rn, path) {
				warnings = append(warnings, fmt.Sprintf("dropped %s: kubeadm removed it in v1beta3", dotted(path)))
			}
		}
	}
	if older("v1beta4") && newer("v1beta4") {
		switch kind {
		case "ClusterConfiguration":
			if drop(rn, []string{"apiServer", "timeoutForControlPlane"}) {
				warnings = append(warnings, "dropped apiServer.timeoutForControlPlane: since v1beta4 it is timeouts.controlPlaneComponentHealthCheck of InitConfiguration and JoinConfiguration; patch that instead")
			}
		case "JoinConfiguration":
			move(rn, []string{"discovery", "timeout"}, []string{"timeouts", "discovery"})
		}
	}
	convertArgs(rn, kind, listArgs(to))
	return warnings
}

// convertArgs writes the extra arguments of a kubeadm document as lists
// (toList) or maps, whichever shape they are in now.
func convertArgs(rn *yaml.RNode, kind string, toList bool) {
	for _, path := range argPaths[kind] {
		n, err := rn.Pipe(yaml.Lookup(path...))
		if err != nil || n == nil {
			continue
		}
		y := n.YNode()
		switch {
		case toList && y.Kind == yaml.MappingNode:
			list := &yaml.Node{Kind: yaml.SequenceNode, Tag: yaml.NodeTagSeq}
			for i := 0; i+1 < len(y.Content); i += 2 {
				list.Content = append(list.Content, node(obj{{"name", y.Content[i].Value}, {"value", argValue(y.Content[i+1])}}))
			}
			*y = *list
		case !toList && y.Kind == yaml.SequenceNode:
			m := &yaml.Node{Kind: yaml.MappingNode, Tag: yaml.NodeTagMap}
			for _, e := range y.Content {
				name, value := fieldOf(e, "name"), fieldOf(e, "value")
				if name == nil {
					continue
				}
				if value == nil {
					value = scalar("", yaml.NodeTagString)
				}
				// A repeated name keeps its last value, as a map must.
				for i := 0; i+1 < len(m.Content); i += 2 {
					if m.Content[i].Value == name.Value {
						m.Content = append(m.Content[:i], m.Content[i+2:]...)
						break
					}
				}
				m.Content = append(m.Content, scalar(name.Value, yaml.NodeTagString), argValue(value))
			}
			*y = *m
		}
	}
}

// argValue is an argument's value as a string: kubeadm's args are strings,
// though a patch may write `v: 2`.
func argValue(n *yaml.Node) *yaml.Node {
	if n.Kind != yaml.ScalarNode {
		return n
	}
	return scalar(n.Value, yaml.NodeTagString)
}

func fieldOf(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// move puts the value at path from under path to, creating the parents,
// unless something is there already.
func move(rn *yaml.RNode, from, to []string) {
	v, err := rn.Pipe(yaml.Lookup(from...))
	if err != nil || v == nil {
		return
	}
	drop(rn, from)
	if existing, _ := rn.Pipe(yaml.Lookup(to...)); existing != nil {
		return
	}
	parent, err := rn.Pipe(yaml.LookupCreate(yaml.MappingNode, to[:len(to)-1]...))
	if err != nil || parent == nil {
		return
	}
	_ = parent.PipeE(yaml.SetField(to[len(to)-1], v))
}

// drop removes the field at path and says whether it was there.
func drop(rn *yaml.RNode, path []string) bool {
	parent := rn
	if len(path) > 1 {
		p, err := rn.Pipe(yaml.Lookup(path[:len(path)-1]...))
		if err != nil || p == nil {
			return false
		}
		parent = p
	}
	cleared, err := parent.Pipe(yaml.Clear(path[len(path)-1]))
	return err == nil && cleared != nil
}

func dotted(path []string) string {
	s := path[0]
	for _, p := range path[1:] {
		s += "." + p
	}
	return s
}
