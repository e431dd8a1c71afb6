package kubeconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

const (
	// extensionName names kinc's extension in the contexts it writes; it
	// holds recordKey, the current-context from before Merge, when there
	// was one.
	extensionName = "kinc"
	recordKey     = "previous-current-context"

	currentKey = "current-context"
)

// listKeys are the kubeconfig lists that hold named entries.
var listKeys = []string{"clusters", "contexts", "users"}

// document is a kubeconfig as a YAML tree, with the layout to write it back in.
type document struct {
	doc     *yaml.Node // the DocumentNode, which holds head and foot comments
	root    *yaml.Node // its top-level mapping
	compact bool       // "key:\n- item" rather than "key:\n  - item"
}

// record is the current-context from before a Merge.
type record struct {
	present bool // the file had a current-context key
	value   string
}

// newDocument is the empty kubeconfig kubectl would write.
func newDocument() *document {
	root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, kv := range [][2]string{
		{"apiVersion", "v1"}, {"clusters", ""}, {"contexts", ""}, {currentKey, ""},
		{"kind", "Config"}, {"preferences", ""}, {"users", ""},
	} {
		var v *yaml.Node
		switch {
		case kv[0] == "preferences":
			v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
		case kv[0] == currentKey:
			v = str("")
		case kv[1] == "":
			v = null()
		default:
			v = str(kv[1])
		}
		root.Content = append(root.Content, str(kv[0]), v)
	}
	return &document{
		doc:     &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}},
		root:    root,
		compact: true,
	}
}

// parse reads a kubeconfig; file only names it in errors. Empty input is the
// empty kubeconfig.
func parse(file string, data []byte) (*document, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return newDocument(), nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF): // only comments: keep them
		d := newDocument()
		d.doc.HeadComment = strings.TrimSpace(string(data))
		return d, nil
	case err != nil:
		return nil, fmt.Errorf("parsing kubeconfig %s: %w", file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("parsing kubeconfig %s: line %d: a second YAML document", file, extra.Line)
	}
	root := doc.Content[0]
	if isNull(root) { // "---" alone, or "null": empty, as kubectl reads it
		d := newDocument()
		d.doc.HeadComment, d.doc.FootComment = doc.HeadComment, doc.FootComment
		return d, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("parsing kubeconfig %s: line %d: the document is not a mapping", file, root.Line)
	}
	for _, k := range listKeys {
		key, list := lookup(root, k)
		if list == nil || isNull(list) {
			continue
		}
		if list.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("parsing kubeconfig %s: line %d: %s is not a list", file, key.Line, k)
		}
		for _, it := range list.Content {
			if it.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("parsing kubeconfig %s: line %d: an entry of %s is not a mapping", file, it.Line, k)
			}
		}
	}
	if key, cur := lookup(root, currentKey); cur != nil && cur.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("parsing kubeconfig %s: line %d: %s is not a string", file, key.Line, currentKey)
	}
	d := &document{doc: &doc, root: root, compact: true}
	d.deriveLayout(root)
	return d, nil
}

// deriveLayout takes the sequence style of the first block sequence, so that
// a file written by kubectl, or by hand in the indented style, encodes back to
// the same bytes.
func (d *document) deriveLayout(n *yaml.Node) bool {
	if n.Style&yaml.FlowStyle != 0 {
		return false
	}
	for i := 0; i < len(n.Content); i++ {
		v := n.Content[i]
		if n.Kind == yaml.MappingNode && i%2 == 0 {
			continue
		}
		if n.Kind == yaml.MappingNode && v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
			d.compact = v.Column == n.Content[i-1].Column
			return true
		}
		if d.deriveLayout(v) {
			return true
		}
	}
	return false
}

func (d *document) encode() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2) // kubectl's
	if d.compact {
		enc.CompactSeqIndent()
	}
	if err := enc.Encode(d.doc); err != nil {
		return nil, fmt.Errorf("encoding kubeconfig: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding kubeconfig: %w", err)
	}
	return b.Bytes(), nil
}

// merge puts e's cluster, user and context in place of any of the same name
// (else at the end of their lists) and makes it the current context,
// recording the previous one.
func (d *document) merge(e *Entry) error {
	if err := e.validate(); err != nil {
		return err
	}
	old, recorded := d.recordOf(e.Name)
	r := record{}
	if _, cur := lookup(d.root, currentKey); cur != nil {
		r = record{present: true, value: cur.Value}
	}
	switch {
	case r.value == e.Name && recorded:
		// Merging again over ourselves: keep what was current before.
		r = old
	case r.value == e.Name:
		r = record{present: true}
	case recorded:
		// Re-created while another context is current: leave our old place
		// in the chain of records as Remove would, then join at its end.
		d.relink(e.Name, old)
	}
	cl, err := e.clusterNode()
	if err != nil {
		return err
	}
	u, err := e.userNode()
	if err != nil {
		return err
	}
	cx, err := e.contextNode(r)
	if err != nil {
		return err
	}
	d.put("clusters", e.Name, cl)
	d.put("users", e.Name, u)
	d.put("contexts", e.Name, cx)
	d.setCurrent(&e.Name)
	return nil
}

// remove deletes the entries called name, restores current-context if it is
// still name, and reports whether anything changed.
func (d *document) remove(name string) bool {
	r, recorded := d.recordOf(name)
	changed := false
	for _, k := range listKeys {
		changed = d.drop(k, name) || changed
	}
	if recorded && d.relink(name, r) {
		changed = true
	}
	if _, cur := lookup(d.root, currentKey); cur != nil && cur.Value == name {
		switch {
		case recorded && !r.present:
			d.setCurrent(nil)
		case recorded && (r.value == "" || d.find("contexts", r.value) != nil):
			d.setCurrent(&r.value)
		default:
			empty := ""
			d.setCurrent(&empty)
		}
		changed = true
	}
	return changed
}

// relink gives r to every context whose record names context name: contexts
// made after it then still lead back to the one that was current before it.
func (d *document) relink(name string, r record) bool {
	changed := false
	for _, c := range d.items("contexts") {
		if v := recordValue(c); v != nil && v.Value == name && nameOf(c) != name {
			replaceRecord(c, r)
			changed = true
		}
	}
	return changed
}

// put replaces the entry called name in list key, or appends it.
func (d *document) put(key, name string, entry *yaml.Node) {
	_, list := lookup(d.root, key)
	if list == nil || list.Kind != yaml.SequenceNode || list.Style&yaml.FlowStyle != 0 && len(list.Content) == 0 {
		// Absent, null or []: a block list, like kubectl's.
		fresh := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if list != nil {
			fresh.HeadComment, fresh.LineComment, fresh.FootComment = list.HeadComment, list.LineComment, list.FootComment
		}
		d.set(key, fresh)
		list = fresh
	}
	for i, it := range list.Content {
		if nameOf(it) == name {
			list.Content[i] = entry
			return
		}
	}
	list.Content = append(list.Content, entry)
}

// drop deletes every entry called name from list key; a list left empty
// becomes null, as kubectl writes an empty list.
func (d *document) drop(key, name string) bool {
	_, list := lookup(d.root, key)
	if list == nil || list.Kind != yaml.SequenceNode {
		return false
	}
	kept := slices.DeleteFunc(slices.Clone(list.Content), func(it *yaml.Node) bool { return nameOf(it) == name })
	if len(kept) == len(list.Content) {
		return false
	}
	if len(kept) > 0 {
		list.Content = kept
		return true
	}
	n := null()
	n.HeadComment, n.LineComment, n.FootComment = list.HeadComment, list.LineComment, list.FootComment
	d.set(key, n)
	return true
}

// setCurrent sets current-context to *v, or deletes the key when v is nil.
func (d *document) setCurrent(v *string) {
	key, old := lookup(d.root, currentKey)
	if v == nil {
		if key != nil {
			i := slices.Index(d.root.Content, key)
			d.root.Content = slices.Delete(d.root.Content, i, i+2)
		}
		return
	}
	n := str(*v)
	if old != nil {
		n.HeadComment, n.LineComment, n.FootComment = old.HeadComment, old.LineComment, old.FootComment
	}
	d.set(currentKey, n)
}

// set replaces the value of key in the top-level mapping, or inserts the key
// before the first key that sorts after it (kubectl sorts keys).
func (d *document) set(key string, v *yaml.Node) {
	c := d.root.Content
	for i := 0; i+1 < len(c); i += 2 {
		if c[i].Value == key {
			c[i+1] = v
			return
		}
	}
	at := len(c)
	for i := 0; i+1 < len(c); i += 2 {
		if c[i].Value > key {
			at = i
			break
		}
	}
	d.root.Content = slices.Insert(c, at, str(key), v)
}

// dropRecord removes kinc's extension from context name, for a standalone
// kubeconfig that will never be merged.
func (d *document) dropRecord(name string) {
	if c := d.find("contexts", name); c != nil {
		if _, cx := lookup(c, "context"); cx != nil {
			if k, _ := lookup(cx, "extensions"); k != nil {
				i := slices.Index(cx.Content, k)
				cx.Content = slices.Delete(cx.Content, i, i+2)
			}
		}
	}
}

// recordOf reads the record in context name, if it has one.
func (d *document) recordOf(name string) (record, bool) {
	c := d.find("contexts", name)
	if c == nil {
		return record{}, false
	}
	if extension(c) != nil {
		if v := recordValue(c); v != nil {
			return record{present: true, value: v.Value}, true
		}
		return record{}, true
	}
	return record{}, false
}

// extension is kinc's extension mapping in a context entry, or nil.
func extension(entry *yaml.Node) *yaml.Node {
	_, cx := lookup(entry, "context")
	_, exts := lookup(cx, "extensions")
	if exts == nil || exts.Kind != yaml.SequenceNode {
		return nil
	}
	for _, x := range exts.Content {
		if nameOf(x) == extensionName {
			if _, m := lookup(x, "extension"); m != nil && m.Kind == yaml.MappingNode {
				return m
			}
		}
	}
	return nil
}

func recordValue(entry *yaml.Node) *yaml.Node {
	if ext := extension(entry); ext != nil {
		if _, v := lookup(ext, recordKey); v != nil && v.Kind == yaml.ScalarNode {
			return v
		}
	}
	return nil
}

func replaceRecord(entry *yaml.Node, r record) {
	ext := extension(entry)
	if k, _ := lookup(ext, recordKey); k != nil {
		i := slices.Index(ext.Content, k)
		ext.Content = slices.Delete(ext.Content, i, i+2)
	}
	if r.present {
		ext.Content = append(ext.Content, str(recordKey), str(r.value))
	}
	if len(ext.Content) == 0 {
		ext.Style = yaml.FlowStyle // "{}", as the encoder writes an empty map
	}
}

func (d *document) items(key string) []*yaml.Node {
	if _, list := lookup(d.root, key); list != nil && list.Kind == yaml.SequenceNode {
		return list.Content
	}
	return nil
}

func (d *document) find(key, name string) *yaml.Node {
	for _, it := range d.items(key) {
		if nameOf(it) == name {
			return it
		}
	}
	return nil
}

// lookup finds key in mapping m.
func lookup(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func nameOf(entry *yaml.Node) string {
	if _, n := lookup(entry, "name"); n != nil && n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func null() *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"} }

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
