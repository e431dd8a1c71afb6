package config

import (
	"fmt"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// maxNodes bounds the walk: aliases can make a small file expand without
// end ("billion laughs"), and no real config comes near this.
const maxNodes = 100000

// scalarDecoder is a type that reads itself from one YAML scalar, for the
// enums older API versions also wrote as numbers.
type scalarDecoder interface {
	decodeScalar(value string) error
}

// decoder walks a YAML node tree into a Go value by the json tags of its
// types, strictly: unknown fields, wrong types and duplicate keys become
// Errors at their line; the line of every field seen is kept in src.
type decoder struct {
	src      *source
	errs     []error
	visited  int
	tooLarge bool
	merging  map[*yaml.Node]bool // mappings being merged, to stop at a cycle
}

// budget counts a node visited and says whether the walk may go on.
func (d *decoder) budget(n *yaml.Node, path string) bool {
	if d.visited++; d.visited <= maxNodes {
		return true
	}
	if !d.tooLarge {
		d.tooLarge = true
		d.fail(n, path, "document too large after expanding aliases (more than %d nodes)", maxNodes)
	}
	return false
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.src.file, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.budget(n, path) {
		return
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path)
		return
	}
	if _, seen := d.src.lines[path]; !seen && path != "" {
		d.src.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // like encoding/json: null leaves the zero value
	}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		d.decodeCustom(n, sd, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path)
		v.Set(elem)
	default:
		d.decodeScalar(n, v, path)
	}
}

func (d *decoder) decodeCustom(n *yaml.Node, sd scalarDecoder, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "wrong type: want %s, got %s", describeType(v.Type()), describeNode(n))
		return
	}
	if err := sd.decodeScalar(n.Value); err != nil {
		d.fail(n, path, "%v", err)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "wrong type: want %s, got %s", describeType(v.Type()), describeNode(n))
		return
	}
	tmp := reflect.New(v.Type())
	if err := n.Decode(tmp.Interface()); err != nil {
		d.fail(n, path, "wrong type: want %s, got %s", describeType(v.Type()), describeNode(n))
		return
	}
	v.Set(tmp.Elem())
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "wrong type: want %s, got %s", describeType(v.Type()), describeNode(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), indexPath(path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	pairs, ok := d.mappingPairs(n, v.Type(), path)
	if !ok {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, p := range pairs {
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decodeField(p, elem, childPath(path, p.key.Value))
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(v.Type().Key()), elem)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	pairs, ok := d.mappingPairs(n, v.Type(), path)
	if !ok {
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range pairs {
		name := p.key.Value
		f, known := fields.byName[name]
		if !known {
			d.fail(p.key, childPath(path, name), "%s", unknownFieldMsg(name, fields.names))
			continue
		}
		d.decodeField(p, v.FieldByIndex(f), childPath(path, name))
	}
}

type pair struct{ key, value *yaml.Node }

// decodeField places a field at its key's line, where users look for it,
// rather than at its value's (a list starts on the next line).
func (d *decoder) decodeField(p pair, v reflect.Value, path string) {
	if _, seen := d.src.lines[path]; !seen {
		d.src.lines[path] = p.key.Line
	}
	d.decode(p.value, v, path)
}

// mappingPairs checks that n is a mapping with string keys and no key twice
// and returns its pairs, merge keys (<<) resolved: explicit keys win.
func (d *decoder) mappingPairs(n *yaml.Node, t reflect.Type, path string) ([]pair, bool) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "wrong type: want %s, got %s", describeType(t), describeNode(n))
		return nil, false
	}
	var merged, explicit []pair
	firstLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.mergePairs(val, t, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "wrong type: a key must be a string, got %s", describeNode(k))
			continue
		}
		if line, dup := firstLine[k.Value]; dup {
			d.fail(k, childPath(path, k.Value), "duplicate key (first at line %d); keep only one", line)
			continue
		}
		firstLine[k.Value] = k.Line
		explicit = append(explicit, pair{k, val})
	}
	var out []pair
	for _, p := range merged {
		if _, overridden := firstLine[p.key.Value]; !overridden {
			firstLine[p.key.Value] = p.key.Line
			out = append(out, p)
		}
	}
	return append(out, explicit...), true
}

// mergePairs reads the value of a merge key: a mapping or a list of them.
func (d *decoder) mergePairs(n *yaml.Node, t reflect.Type, path string) []pair {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var maps []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{n}
	case yaml.SequenceNode:
		maps = n.Content
	default:
		d.fail(n, path, "a merge key (<<) needs a mapping or a list of mappings, got %s", describeNode(n))
		return nil
	}
	var out []pair
	for _, m := range maps {
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		if !d.budget(m, path) {
			return out
		}
		if d.merging[m] {
			d.fail(m, path, "a merge key (<<) refers to a mapping that contains it")
			continue
		}
		d.merging[m] = true
		pairs, ok := d.mappingPairs(m, t, path)
		delete(d.merging, m)
		if ok {
			out = append(out, pairs...)
		}
	}
	return out
}

// structFields maps the json names of a struct's fields (embedded structs
// flattened) to their field index, and keeps them in declaration order.
type structFields struct {
	byName map[string][]int
	names  []string
}

func fieldsOf(t reflect.Type) structFields {
	sf := structFields{byName: map[string][]int{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			idx := append(append([]int(nil), index...), i)
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if name == "-" || !f.IsExported() && !f.Anonymous {
				continue
			}
			if name == "" {
				name = f.Name
			}
			sf.byName[name] = idx
			sf.names = append(sf.names, name)
		}
	}
	walk(t, nil)
	return sf
}

func unknownFieldMsg(name string, accepted []string) string {
	list := "accepted fields: " + strings.Join(accepted, ", ")
	if s := suggest(name, accepted); s != "" {
		return fmt.Sprintf("unknown field; did you mean %q? (%s)", s, list)
	}
	return fmt.Sprintf("unknown field (%s)", list)
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer (%d bits)", t.Bits())
	case reflect.Pointer:
		return describeType(t.Elem())
	default:
		return "a string"
	}
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return describeNode(n.Alias)
	}
	kind := map[string]string{"!!bool": "boolean", "!!int": "integer", "!!float": "number", "!!str": "string"}[n.Tag]
	if kind == "" {
		kind = n.Tag
	}
	return fmt.Sprintf("%s %q", kind, n.Value)
}

// suggest returns the accepted name closest to a mistyped one, or "" when
// none is close enough to be a likely typo.
func suggest(name string, accepted []string) string {
	best, bestDist := "", -1
	for _, a := range accepted {
		d := editDistance(strings.ToLower(name), strings.ToLower(a))
		if bestDist < 0 || d < bestDist {
			best, bestDist = a, d
		}
	}
	limit := max(2, len(name)/3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
