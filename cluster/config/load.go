package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// EnvClusterName names the cluster when neither --name nor the config does.
const EnvClusterName = "KINC_CLUSTER_NAME"

// DefaultClusterName is the name of a cluster nobody named.
const DefaultClusterName = "kinc"

// StdinName is the file name errors give to a config read from stdin.
const StdinName = "<stdin>"

type options struct {
	name         string
	getenv       func(string) string
	image        string
	defaultImage string
	stdin        io.Reader
}

// Option changes how a config is loaded and defaulted.
type Option func(*options) error

// WithName names the cluster, over the config's name (the --name flag).
func WithName(name string) Option {
	return func(o *options) error { o.name = name; return nil }
}

// WithEnv gives the environment (os.Getenv) for KINC_CLUSTER_NAME; without
// it the environment is not read.
func WithEnv(getenv func(string) string) Option {
	return func(o *options) error { o.getenv = getenv; return nil }
}

// WithImage sets the image of every node, over the config (the --image flag).
func WithImage(ref string) Option {
	return func(o *options) error { o.image = ref; return nil }
}

// WithDefaultImage sets the image of the nodes that name none.
func WithDefaultImage(ref string) Option {
	return func(o *options) error { o.defaultImage = ref; return nil }
}

// WithStdin is where Load reads the config "-"; os.Stdin by default.
func WithStdin(r io.Reader) Option {
	return func(o *options) error { o.stdin = r; return nil }
}

func newOptions(opts []Option) (*options, error) {
	o := &options{stdin: os.Stdin}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Load reads a cluster config file, converts it to the internal form,
// defaults and validates it. Path "-" reads stdin; "" means no file: a
// default cluster of one control-plane node.
func Load(path string, opts ...Option) (*Cluster, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	switch path {
	case "":
		return complete(&Cluster{}, newSource(""), o)
	case "-":
		data, err := io.ReadAll(o.stdin)
		if err != nil {
			return nil, fmt.Errorf("reading config from stdin: %w", err)
		}
		return parse(StdinName, data, o)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config %q: %w", path, err)
	}
	return parse(path, data, o)
}

// Parse is Load for a config already in memory; name is the file name the
// errors give.
func Parse(name string, data []byte, opts ...Option) (*Cluster, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return parse(name, data, o)
}

func parse(name string, data []byte, o *options) (*Cluster, error) {
	src := newSource(name)
	c, err := decodeDocument(data, src)
	if err != nil {
		return nil, err
	}
	return complete(c, src, o)
}

// complete defaults and validates a converted Cluster.
func complete(c *Cluster, src *source, o *options) (*Cluster, error) {
	if o.name != "" {
		delete(src.lines, "name") // the flag, not the file, named it
	}
	setDefaults(c, o)
	if err := validate(c, src); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeDocument reads the one YAML document in data, picks its version by
// apiVersion and kind, decodes it strictly and converts it.
func decodeDocument(data []byte, src *source) (*Cluster, error) {
	root, err := readYAML(data, src)
	if err != nil {
		return nil, err
	}
	v, err := pickVersion(root, src)
	if err != nil {
		return nil, err
	}
	doc := v.newDoc()
	d := &decoder{src: src, merging: map[*yaml.Node]bool{}}
	d.decode(root, reflect.ValueOf(doc).Elem(), "")
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return v.convert(doc, src)
}

// readYAML parses data into the root mapping node of its only document.
func readYAML(data []byte, src *source) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: src.file, Msg: "empty config; start it with apiVersion: " + APIVersionV1Alpha4 + " and kind: Cluster"}
		}
		return nil, yamlError(err, src)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, &Error{File: src.file, Line: next.Line, Msg: "more than one YAML document; keep one Cluster per file"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(err, src)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: src.file, Line: root.Line, Msg: fmt.Sprintf("wrong type: want a mapping with apiVersion and kind, got %s", describeNode(root))}
	}
	return root, nil
}

var (
	yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	// The parser (unlike the scanner) reports 0-based lines.
	yamlParserProblemRE = regexp.MustCompile(`^did not find expected (<document start>|node content|key|'-' indicator|',' or '\]'|',' or '\}')$`)
)

// yamlLine splits a go-yaml error into a 1-based line (0 if none) and the
// problem.
func yamlLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	line, _ := strconv.Atoi(m[1])
	if yamlParserProblemRE.MatchString(m[2]) {
		line++
	}
	return line, m[2]
}

// yamlError turns a parser error into an Error with its line.
func yamlError(err error, src *source) error {
	line, msg := yamlLine(err)
	return &Error{File: src.file, Line: line, Msg: "invalid YAML: " + msg}
}

// pickVersion reads apiVersion and kind from the root mapping.
func pickVersion(root *yaml.Node, src *source) (*version, error) {
	apiVersion, kind := scalarField(root, "apiVersion"), scalarField(root, "kind")
	switch {
	case apiVersion == nil:
		return nil, &Error{File: src.file, Line: root.Line, Field: "apiVersion", Msg: "missing; accepted: " + acceptedTypes()}
	case kind == nil:
		return nil, &Error{File: src.file, Line: root.Line, Field: "kind", Msg: "missing; accepted: " + acceptedTypes()}
	}
	for i, v := range versions {
		if v.apiVersion == apiVersion.Value && v.kind == kind.Value {
			return &versions[i], nil
		}
	}
	for _, v := range versions {
		if v.apiVersion == apiVersion.Value {
			return nil, &Error{File: src.file, Line: kind.Line, Field: "kind", Msg: fmt.Sprintf("%q is not accepted with apiVersion %s; accepted: %s", kind.Value, apiVersion.Value, acceptedTypes())}
		}
	}
	return nil, &Error{File: src.file, Line: apiVersion.Line, Field: "apiVersion", Msg: fmt.Sprintf("%q is not accepted; accepted: %s", apiVersion.Value, acceptedTypes())}
}

// scalarField returns the value node of a scalar key in a mapping.
func scalarField(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1]
		}
	}
	return nil
}
