package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/kinc-dev/kinc/runtime"
)

// KubeadmLogPath is where a node keeps the output of its kubeadm init or
// join (runLogged), for `kinc export logs` and for users of --retain.
const KubeadmLogPath = "/kind/kubeadm.log"

// itemTimeout bounds the collection of one item.
const itemTimeout = 2 * time.Minute

// LogsReport tells what ExportLogs wrote.
type LogsReport struct {
	Dir string
	// Failed lists the files (relative to Dir) whose collection failed;
	// each holds what could be collected followed by the error.
	Failed []string
}

// ExportLogs writes a cluster's diagnostics under dir, one directory per
// container (the load balancer included), collected in parallel:
//
//	kinc-version.txt       versionText, as the caller gives it
//	runtime-info.json      the runtime's Info
//	NODE/inspect.json      the container as the runtime sees it
//	NODE/serial.log        the container's own output (systemd's console)
//	NODE/journal.log       the whole journal
//	NODE/kubelet.log, NODE/containerd.log   their units' journal
//	NODE/kubeadm.log       kubeadm's output, when the node kept it
//	NODE/crictl-ps.txt, NODE/images.txt     crictl ps -a, crictl images
//	NODE/containers/POD_NAMESPACE_CONTAINER-ID.log  crictl logs of each
//
// A failure to collect one item is written into that item's file and does
// not stop the others; a cluster without containers is an error.
func ExportLogs(ctx context.Context, rt runtime.Runtime, cluster, dir, versionText string) (*LogsReport, error) {
	nodes, err := Nodes(ctx, rt, cluster)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("cluster %q %w (list clusters with `kinc get clusters`)", cluster, runtime.ErrNotFound)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating logs directory: %w", err)
	}
	c := &collector{dir: dir}
	c.item(ctx, "kinc-version.txt", func(ctx context.Context, w io.Writer) error {
		_, err := io.WriteString(w, versionText)
		return err
	})
	c.item(ctx, "runtime-info.json", func(ctx context.Context, w io.Writer) error {
		info, err := rt.Info(ctx)
		if err != nil {
			return err
		}
		return writeJSON(w, info)
	})
	_ = forEach(ctx, nodes, func(ctx context.Context, st runtime.NodeStatus) error {
		c.node(ctx, rt, st)
		return nil
	})
	sort.Strings(c.failed)
	return &LogsReport{Dir: dir, Failed: c.failed}, nil
}

// collector writes items under dir and remembers which ones failed.
type collector struct {
	dir    string
	mu     sync.Mutex
	failed []string
}

// item writes the file rel with what collect writes; an error of collect
// is appended to the file, so that the reader sees what was missed.
func (c *collector) item(ctx context.Context, rel string, collect func(ctx context.Context, w io.Writer) error) {
	// A wedged node must not hold up the export for ever.
	ctx, cancel := context.WithTimeout(ctx, itemTimeout)
	defer cancel()
	p := filepath.Join(c.dir, filepath.FromSlash(rel))
	err := os.MkdirAll(filepath.Dir(p), 0o755)
	var f *os.File
	if err == nil {
		f, err = os.Create(p)
	}
	if err == nil {
		err = collect(ctx, &lockedWriter{w: f})
		if err != nil {
			fmt.Fprintf(f, "\nkinc: collecting %s failed: %v\n", rel, err)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		c.mu.Lock()
		c.failed = append(c.failed, rel)
		c.mu.Unlock()
	}
}

// node collects one container's items, one after the other: the nodes
// already run in parallel and each item is a command in the node.
func (c *collector) node(ctx context.Context, rt runtime.Runtime, st runtime.NodeStatus) {
	n := node{rt, st.Name}
	c.item(ctx, st.Name+"/inspect.json", func(ctx context.Context, w io.Writer) error {
		inspected, err := rt.InspectNode(ctx, st.Name)
		if err != nil {
			return err
		}
		return writeJSON(w, inspected)
	})
	c.item(ctx, st.Name+"/serial.log", func(ctx context.Context, w io.Writer) error { return rt.Logs(ctx, st.Name, w) })
	if st.State != runtime.StateRunning {
		// Nothing runs in it: the runtime's view is all there is.
		return
	}
	c.item(ctx, st.Name+"/journal.log", func(ctx context.Context, w io.Writer) error { return n.run(ctx, w, "journalctl", "--no-pager") })
	if st.Labels[runtime.LabelRole] == RoleLoadBalancer {
		return
	}
	for _, unit := range []string{"kubelet", "containerd"} {
		c.item(ctx, st.Name+"/"+unit+".log", func(ctx context.Context, w io.Writer) error {
			return n.run(ctx, w, "journalctl", "--no-pager", "--unit="+unit+".service")
		})
	}
	if _, err := n.output(ctx, "test", "-f", KubeadmLogPath); err == nil {
		c.item(ctx, st.Name+"/kubeadm.log", func(ctx context.Context, w io.Writer) error { return n.run(ctx, w, "cat", KubeadmLogPath) })
	}
	c.item(ctx, st.Name+"/crictl-ps.txt", func(ctx context.Context, w io.Writer) error { return n.run(ctx, w, crictl("ps", "-a")...) })
	c.item(ctx, st.Name+"/images.txt", func(ctx context.Context, w io.Writer) error { return n.run(ctx, w, crictl("images")...) })
	out, err := n.output(ctx, crictl("ps", "-a", "-o", "json")...)
	var list []criContainer
	if err == nil {
		list, err = parseCrictlPS([]byte(out))
	}
	if err != nil {
		c.item(ctx, st.Name+"/containers/listing-failed.txt", func(context.Context, io.Writer) error {
			return fmt.Errorf("listing containers: %w", err)
		})
		return
	}
	for _, ct := range list {
		c.item(ctx, st.Name+"/containers/"+ct.logName(), func(ctx context.Context, w io.Writer) error {
			return n.run(ctx, w, crictl("logs", ct.ID)...)
		})
	}
}

// crictl is a crictl command that names containerd's socket: without a
// crictl.yaml (kinc's node images have none) crictl prints warnings that
// would mix into the containers' logs.
func crictl(args ...string) []string {
	const sock = "unix:///run/containerd/containerd.sock"
	return append([]string{"crictl", "--config=/dev/null", "--runtime-endpoint=" + sock, "--image-endpoint=" + sock}, args...)
}

// criContainer is what export logs needs of `crictl ps -o json`.
type criContainer struct {
	ID       string `json:"id"`
	Metadata struct {
		Name    string `json:"name"`
		Attempt int    `json:"attempt"`
	} `json:"metadata"`
	Labels map[string]string `json:"labels"`
}

func parseCrictlPS(data []byte) ([]criContainer, error) {
	var ps struct {
		Containers []criContainer `json:"containers"`
	}
	if err := json.Unmarshal(data, &ps); err != nil {
		return nil, fmt.Errorf("reading crictl ps output: %w", err)
	}
	return ps.Containers, nil
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// logName is POD_NAMESPACE_CONTAINER-ATTEMPT-ID.log, as kubelet names
// /var/log/containers (plus the attempt), reduced to safe characters.
func (c criContainer) logName() string {
	id := c.ID
	if len(id) > 13 {
		id = id[:13]
	}
	name := fmt.Sprintf("%s_%s_%s-%d-%s", c.Labels["io.kubernetes.pod.name"], c.Labels["io.kubernetes.pod.namespace"], c.Metadata.Name, c.Metadata.Attempt, id)
	return unsafeFileChars.ReplaceAllString(name, "-") + ".log"
}

func writeJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// lockedWriter serialises writes: a backend may copy a command's stdout
// and stderr to the same writer from two goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
