package kubeconfig

import (
	"encoding/base64"
	"errors"
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// Entry is what kinc owns in a kubeconfig for one cluster: a cluster, a user
// and a context, all three called Name.
type Entry struct {
	Name                     string // ContextName of the kinc cluster
	Server                   string // https://127.0.0.1:PORT, or the node's address for --internal
	CertificateAuthorityData []byte // PEM, as decoded from the file
	ClientCertificateData    []byte
	ClientKeyData            []byte
}

// The kubeconfig shapes kinc reads and writes, fields in kubectl's (sorted)
// order so that new entries look like the ones kubectl writes.
type (
	namedCluster struct {
		Cluster clusterInfo `yaml:"cluster"`
		Name    string      `yaml:"name"`
	}
	clusterInfo struct {
		CertificateAuthorityData string `yaml:"certificate-authority-data,omitempty"`
		Server                   string `yaml:"server"`
	}
	namedContext struct {
		Context contextInfo `yaml:"context"`
		Name    string      `yaml:"name"`
	}
	contextInfo struct {
		Cluster    string           `yaml:"cluster"`
		Extensions []namedExtension `yaml:"extensions,omitempty"`
		User       string           `yaml:"user"`
	}
	namedExtension struct {
		Extension map[string]string `yaml:"extension"`
		Name      string            `yaml:"name"`
	}
	namedUser struct {
		Name string   `yaml:"name"`
		User userInfo `yaml:"user"`
	}
	userInfo struct {
		ClientCertificateData string `yaml:"client-certificate-data,omitempty"`
		ClientKeyData         string `yaml:"client-key-data,omitempty"`
	}
	fileConfig struct {
		Clusters       []namedCluster `yaml:"clusters"`
		Contexts       []namedContext `yaml:"contexts"`
		CurrentContext string         `yaml:"current-context"`
		Users          []namedUser    `yaml:"users"`
	}
)

// FromAdmin reads kubeadm's admin.conf and returns the Entry of cluster
// clusterName: the admin.conf's current context's CA and client credentials,
// pointed at server (left as admin.conf says when server is empty).
func FromAdmin(adminConf []byte, clusterName, server string) (*Entry, error) {
	if clusterName == "" {
		return nil, errors.New("reading admin.conf: empty cluster name")
	}
	var cfg fileConfig
	if err := yaml.Unmarshal(adminConf, &cfg); err != nil {
		return nil, fmt.Errorf("reading admin.conf: %w", err)
	}
	c, err := pick(cfg.Contexts, cfg.CurrentContext, func(c namedContext) string { return c.Name })
	if err != nil {
		return nil, fmt.Errorf("reading admin.conf: context: %w", err)
	}
	cl, err := pick(cfg.Clusters, c.Context.Cluster, func(c namedCluster) string { return c.Name })
	if err != nil {
		return nil, fmt.Errorf("reading admin.conf: cluster: %w", err)
	}
	u, err := pick(cfg.Users, c.Context.User, func(u namedUser) string { return u.Name })
	if err != nil {
		return nil, fmt.Errorf("reading admin.conf: user: %w", err)
	}
	e := &Entry{Name: ContextName(clusterName), Server: server}
	if e.Server == "" {
		e.Server = cl.Cluster.Server
	}
	for _, f := range []struct {
		name string
		in   string
		out  *[]byte
	}{
		{"certificate-authority-data", cl.Cluster.CertificateAuthorityData, &e.CertificateAuthorityData},
		{"client-certificate-data", u.User.ClientCertificateData, &e.ClientCertificateData},
		{"client-key-data", u.User.ClientKeyData, &e.ClientKeyData},
	} {
		if f.in == "" {
			return nil, fmt.Errorf("reading admin.conf: no %s", f.name)
		}
		if *f.out, err = base64.StdEncoding.DecodeString(f.in); err != nil {
			return nil, fmt.Errorf("reading admin.conf: decoding %s: %w", f.name, err)
		}
	}
	return e, nil
}

// pick finds the item called name, or the only item when name is empty.
func pick[T any](items []T, name string, nameOf func(T) string) (T, error) {
	var zero T
	if name == "" {
		if len(items) != 1 {
			return zero, fmt.Errorf("none named and %d to choose from", len(items))
		}
		return items[0], nil
	}
	for _, it := range items {
		if nameOf(it) == name {
			return it, nil
		}
	}
	return zero, fmt.Errorf("%q not found", name)
}

// Bytes is the entry as a kubeconfig of its own, with current-context set to
// it: what `kinc get kubeconfig` prints.
func (e *Entry) Bytes() ([]byte, error) {
	d := newDocument()
	if err := d.merge(e); err != nil {
		return nil, err
	}
	d.dropRecord(e.Name)
	return d.encode()
}

// Get is FromAdmin then Bytes: the standalone kubeconfig of a cluster.
func Get(adminConf []byte, clusterName, server string) ([]byte, error) {
	e, err := FromAdmin(adminConf, clusterName, server)
	if err != nil {
		return nil, err
	}
	return e.Bytes()
}

func (e *Entry) validate() error {
	if e == nil || e.Name == "" {
		return errors.New("kubeconfig entry without a name")
	}
	if e.Server == "" {
		return fmt.Errorf("kubeconfig entry %q without a server", e.Name)
	}
	return nil
}

func (e *Entry) clusterNode() (*yaml.Node, error) {
	return toNode(namedCluster{Name: e.Name, Cluster: clusterInfo{
		CertificateAuthorityData: b64(e.CertificateAuthorityData),
		Server:                   e.Server,
	}})
}

func (e *Entry) userNode() (*yaml.Node, error) {
	return toNode(namedUser{Name: e.Name, User: userInfo{
		ClientCertificateData: b64(e.ClientCertificateData),
		ClientKeyData:         b64(e.ClientKeyData),
	}})
}

func (e *Entry) contextNode(r record) (*yaml.Node, error) {
	ext := map[string]string{}
	if r.present {
		ext[recordKey] = r.value
	}
	return toNode(namedContext{Name: e.Name, Context: contextInfo{
		Cluster:    e.Name,
		User:       e.Name,
		Extensions: []namedExtension{{Name: extensionName, Extension: ext}},
	}})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func toNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding kubeconfig entry: %w", err)
	}
	return &n, nil
}

// Discovery is admin.conf's cluster alone, its server and CA without any
// credentials, in the shape of kubeadm's cluster-info: what `kubeadm join`
// reads as a discovery file. It pins the CA, and spares the join waiting
// for kube-controller-manager to sign the cluster-info ConfigMap for the
// bootstrap token (kubeadm checks for that signature every 5 s).
func Discovery(adminConf []byte) ([]byte, error) {
	e, err := FromAdmin(adminConf, "discovery", "")
	if err != nil {
		return nil, err
	}
	// The cluster is unnamed, as in cluster-info: kubeadm then takes it
	// without a context.
	doc := struct {
		APIVersion string         `yaml:"apiVersion"`
		Kind       string         `yaml:"kind"`
		Clusters   []namedCluster `yaml:"clusters"`
	}{"v1", "Config", []namedCluster{{Cluster: clusterInfo{
		CertificateAuthorityData: b64(e.CertificateAuthorityData),
		Server:                   e.Server,
	}}}}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encoding the discovery kubeconfig: %w", err)
	}
	return out, nil
}
