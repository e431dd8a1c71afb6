package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kinc-dev/kinc/runtime"
)

// containerd keeps containers, tasks and images but knows nothing of
// networks, so kinc keeps what it needs between processes on disk:
//
//	<root>/<namespace>/lock
//	<root>/<namespace>/networks/<name>.json      networkState
//	<root>/<namespace>/networks/<name>.conflist  the CNI config
//	<root>/<namespace>/nodes/<name>/node.json    nodeState
//	<root>/<namespace>/nodes/<name>/{var,hosts,resolv.conf,hostname,log}
//
// and, while a node is attached, a pin of its network namespace under
// /run/kinc/containerd/netns (see netns.go).

// networkState is a network as kinc created it.
type networkState struct {
	Name     string            `json:"name"`
	CNIName  string            `json:"cniName"`
	Bridge   string            `json:"bridge"`
	Subnet   string            `json:"subnet"`
	Gateway  string            `json:"gateway"`
	SubnetV6 string            `json:"subnetV6,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// nodeState is what a node needs beyond its containerd record: its place on
// its network, so that a restart gets the same address back and peers can
// resolve its name.
type nodeState struct {
	Name     string                `json:"name"`
	Image    string                `json:"image"`
	Hostname string                `json:"hostname"`
	Network  string                `json:"network,omitempty"`
	Aliases  []string              `json:"aliases,omitempty"`
	IPv4     string                `json:"ipv4,omitempty"`
	IPv6     string                `json:"ipv6,omitempty"`
	Ports    []runtime.PortMapping `json:"ports,omitempty"`
	// Attached is true while the CNI network is set up; NetNS is then the
	// pin of the namespace it is set up in.
	Attached bool   `json:"attached"`
	NetNS    string `json:"netns,omitempty"`
	// Started is set once the node has run, to tell created from stopped.
	Started    bool   `json:"started"`
	StopSignal string `json:"stopSignal,omitempty"`
}

// store is the on-disk state of one containerd namespace.
type store struct {
	dir string
}

func (s store) networkFile(name string) string {
	return filepath.Join(s.dir, "networks", name+".json")
}

func (s store) conflistFile(name string) string {
	return filepath.Join(s.dir, "networks", name+".conflist")
}

func (s store) nodeDir(name string) string {
	return filepath.Join(s.dir, "nodes", name)
}

func (s store) nodeFile(name string) string {
	return filepath.Join(s.nodeDir(name), "node.json")
}

func (s store) logFile(name string) string {
	return filepath.Join(s.nodeDir(name), "log")
}

// lock takes the namespace-wide lock that serialises changes to networks
// and node addresses, across goroutines and processes alike.
func (s store) lock() (unlock func(), err error) {
	return lockFile(filepath.Join(s.dir, "lock"))
}

// lockFile takes an exclusive flock on path. Each call opens the file
// anew, so it excludes other goroutines of this process as well.
func lockFile(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating %q: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %q: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %q: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func (s store) readNetwork(name string) (networkState, error) {
	var n networkState
	err := readJSON(s.networkFile(name), &n)
	return n, err
}

func (s store) writeNetwork(n networkState) error {
	return writeJSON(s.networkFile(n.Name), n)
}

// networks lists the networks of this namespace.
func (s store) networks() ([]networkState, error) {
	return listNetworks(filepath.Join(s.dir, "networks"))
}

func listNetworks(dir string) ([]networkState, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []networkState
	for _, p := range paths {
		var n networkState
		if err := readJSON(p, &n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func (s store) readNode(name string) (nodeState, error) {
	var n nodeState
	err := readJSON(s.nodeFile(name), &n)
	return n, err
}

func (s store) writeNode(n nodeState) error {
	return writeJSON(s.nodeFile(n.Name), n)
}

// nodes lists the nodes of this namespace that have state.
func (s store) nodes() ([]nodeState, error) {
	paths, err := filepath.Glob(filepath.Join(s.dir, "nodes", "*", "node.json"))
	if err != nil {
		return nil, err
	}
	var out []nodeState
	for _, p := range paths {
		var n nodeState
		if err := readJSON(p, &n); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decoding %q: %w", path, err)
	}
	return nil
}

// writeJSON replaces path atomically so that a reader never sees half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %q: %w", filepath.Dir(path), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %q: %w", path, err)
	}
	return nil
}
