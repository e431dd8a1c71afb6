package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kinc-dev/kinc/runtime"
)

// scriptedRuntime answers the few calls load and logs make from data, for
// the tests of their pure logic; any other call panics (nil embedded).
type scriptedRuntime struct {
	runtime.Runtime
	info  runtime.Info
	nodes []runtime.NodeStatus
	// images in the runtime's store
	images map[string]bool
	// exec answers a command in a node: what it prints, or an error.
	exec func(node string, cmd []string) (string, error)

	mu    sync.Mutex
	execs []string // "node: cmd" of every Exec, in order
}

func (r *scriptedRuntime) Info(context.Context) (runtime.Info, error) { return r.info, nil }

func (r *scriptedRuntime) ListNodes(_ context.Context, labels map[string]string) ([]runtime.NodeStatus, error) {
	var out []runtime.NodeStatus
	for _, n := range r.nodes {
		if n.Labels[runtime.LabelCluster] == labels[runtime.LabelCluster] {
			out = append(out, n)
		}
	}
	return out, nil
}

func (r *scriptedRuntime) InspectNode(_ context.Context, name string) (runtime.NodeStatus, error) {
	for _, n := range r.nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return runtime.NodeStatus{}, fmt.Errorf("container %q: %w", name, runtime.ErrNotFound)
}

func (r *scriptedRuntime) Logs(_ context.Context, name string, w io.Writer) error {
	_, err := fmt.Fprintf(w, "systemd booting in %s\n", name)
	return err
}

func (r *scriptedRuntime) ImageExists(_ context.Context, ref string) (bool, error) {
	return r.images[ref], nil
}

func (r *scriptedRuntime) Exec(_ context.Context, node string, spec runtime.ExecSpec) error {
	r.mu.Lock()
	r.execs = append(r.execs, node+": "+strings.Join(spec.Cmd, " "))
	r.mu.Unlock()
	if spec.Stdin != nil {
		io.Copy(io.Discard, spec.Stdin)
	}
	out, err := r.exec(node, spec.Cmd)
	if spec.Stdout != nil {
		io.WriteString(spec.Stdout, out)
	}
	return err
}

func (r *scriptedRuntime) ran(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.execs {
		if strings.Contains(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func nodeStatus(cluster, name, role string) runtime.NodeStatus {
	return runtime.NodeStatus{Name: name, State: runtime.StateRunning,
		Labels: map[string]string{runtime.LabelCluster: cluster, runtime.LabelRole: role}}
}

// twoNodes is cluster "c": a control plane, a worker and a load balancer,
// beside a node of another cluster.
func twoNodes() []runtime.NodeStatus {
	return []runtime.NodeStatus{
		nodeStatus("c", "c-control-plane", "control-plane"),
		nodeStatus("c", "c-worker", "worker"),
		nodeStatus("c", "c-external-load-balancer", RoleLoadBalancer),
		nodeStatus("other", "other-control-plane", "control-plane"),
	}
}

// writeArchive writes images as a docker-archive, as `podman save` does.
func writeArchive(t *testing.T, images map[string]v1.Image) string {
	t.Helper()
	refs := map[name.Tag]v1.Image{}
	for ref, img := range images {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		refs[tag] = img
	}
	file := filepath.Join(t.TempDir(), "images.tar")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := tarball.MultiWrite(refs, f); err != nil {
		t.Fatal(err)
	}
	return file
}

func randomImage(t *testing.T) (v1.Image, string) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return img, id.String()
}

func TestReadArchiveImages(t *testing.T) {
	img, id := randomImage(t)
	file := writeArchive(t, map[string]v1.Image{"localhost/hello:1": img})
	got, err := ReadArchiveImages(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id || len(got[0].Refs) != 1 || got[0].Refs[0] != "localhost/hello:1" {
		t.Errorf("got %+v, want localhost/hello:1 with ID %s", got, id)
	}

	// containerd's archives name the config by its blob path.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	manifest := `[{"Config":"blobs/sha256/abc123","RepoTags":["docker.io/library/x:1"],"Layers":[]}]`
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(manifest))})
	tw.Write([]byte(manifest))
	tw.Close()
	oci := filepath.Join(t.TempDir(), "oci.tar")
	os.WriteFile(oci, buf.Bytes(), 0o644)
	got, err = ReadArchiveImages(oci)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "sha256:abc123" {
		t.Errorf("containerd archive: got %+v, want ID sha256:abc123", got)
	}

	empty := filepath.Join(t.TempDir(), "empty.tar")
	var eb bytes.Buffer
	tar.NewWriter(&eb).Close()
	os.WriteFile(empty, eb.Bytes(), 0o644)
	if _, err := ReadArchiveImages(empty); err == nil || !strings.Contains(err.Error(), "no manifest.json") {
		t.Errorf("archive without manifest: error %v", err)
	}
}

func TestLoadTargets(t *testing.T) {
	rt := &scriptedRuntime{nodes: twoNodes()}
	for _, tc := range []struct {
		name    string
		cluster string
		only    []string
		want    string
		err     string
	}{
		{"every node but the load balancer", "c", nil, "c-control-plane,c-worker", ""},
		{"named nodes", "c", []string{"c-worker"}, "c-worker", ""},
		{"a node named twice", "c", []string{"c-worker", "c-control-plane", "c-worker"}, "c-worker,c-control-plane", ""},
		{"a node of another cluster", "c", []string{"other-control-plane"}, "", `node "other-control-plane" is not in cluster "c" (its nodes: c-control-plane, c-worker)`},
		{"the load balancer", "c", []string{"c-external-load-balancer"}, "", `node "c-external-load-balancer" is not in cluster "c"`},
		{"no such cluster", "nope", nil, "", `cluster "nope" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadTargets(context.Background(), rt, tc.cluster, tc.only)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
}

// crictlImages answers `crictl inspecti REF` from have (ref -> ID) and
// accepts any ctr import.
func crictlImages(have map[string]map[string]string) func(string, []string) (string, error) {
	var mu sync.Mutex
	return func(node string, cmd []string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cmd[0] == "crictl" && cmd[1] == "inspecti":
			ref := cmd[len(cmd)-1]
			if id, ok := have[node][ref]; ok {
				return id + "\n", nil
			}
			return "", &runtime.ExitError{Container: node, Cmd: cmd, Code: 1, Output: "no such image"}
		case cmd[0] == "ctr":
			return "", nil
		}
		return "", fmt.Errorf("unexpected command %v", cmd)
	}
}

func TestLoadArchiveSkipsByID(t *testing.T) {
	img, id := randomImage(t)
	_, otherID := randomImage(t)
	file := writeArchive(t, map[string]v1.Image{"localhost/hello:1": img})
	for _, tc := range []struct {
		name string
		have map[string]map[string]string
		want string // node=loaded|skipped
	}{
		{"nowhere yet", nil, "c-control-plane=loaded c-worker=loaded"},
		{"on one node", map[string]map[string]string{"c-worker": {"localhost/hello:1": id}}, "c-control-plane=loaded c-worker=skipped"},
		{"everywhere", map[string]map[string]string{"c-worker": {"localhost/hello:1": id}, "c-control-plane": {"localhost/hello:1": id}}, "c-control-plane=skipped c-worker=skipped"},
		// The same name on another image is not the image: load it.
		{"same tag, other image", map[string]map[string]string{"c-worker": {"localhost/hello:1": otherID}, "c-control-plane": {"localhost/hello:1": id}}, "c-control-plane=skipped c-worker=loaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &scriptedRuntime{nodes: twoNodes(), exec: crictlImages(tc.have)}
			results, err := LoadArchive(context.Background(), rt, "c", file, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range results {
				state := "loaded"
				if r.Skipped {
					state = "skipped"
				}
				got = append(got, r.Node+"="+state)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %v, want %s", got, tc.want)
			}
			if imports := len(rt.ran("ctr --namespace=k8s.io images import")); imports != strings.Count(tc.want, "=loaded") {
				t.Errorf("%d imports, want one per loaded node: %v", imports, rt.execs)
			}
		})
	}
}

func TestLoadImagesErrors(t *testing.T) {
	rt := &scriptedRuntime{info: runtime.Info{Name: "podman"}, nodes: twoNodes(), images: map[string]bool{"localhost/present:1": true}}
	for _, tc := range []struct {
		name    string
		cluster string
		refs    []string
		only    []string
		err     string
		is      error
	}{
		{"image not in the runtime", "c", []string{"localhost/present:1", "localhost/absent:1"}, nil, `image "localhost/absent:1" not found in podman: pull or build it first`, runtime.ErrNotFound},
		{"no cluster", "nope", []string{"localhost/present:1"}, nil, `cluster "nope" not found`, runtime.ErrNotFound},
		{"no such node", "c", []string{"localhost/present:1"}, []string{"c-worker9"}, `node "c-worker9" is not in cluster "c"`, nil},
		{"no image", "c", nil, nil, "none named", runtime.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadImages(context.Background(), rt, tc.cluster, tc.refs, tc.only)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// idRuntime can tell an image's ID without saving it (imageIDer) and
// saves the one archive it holds.
type idRuntime struct {
	*scriptedRuntime
	ids     map[string]string
	archive string
	saves   int
}

func (r *idRuntime) ImageID(_ context.Context, ref string) (string, error) {
	return r.ids[ref], nil
}

func (r *idRuntime) SaveImages(_ context.Context, refs []string, w io.Writer) error {
	r.saves++
	f, err := os.Open(r.archive)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func TestLoadImagesSkipsSaveWhenUpToDate(t *testing.T) {
	img, id := randomImage(t)
	_, otherID := randomImage(t)
	const ref = "localhost/hello:1"
	archive := writeArchive(t, map[string]v1.Image{ref: img})
	for _, tc := range []struct {
		name  string
		have  map[string]map[string]string
		ids   map[string]string
		saves int
		want  string
	}{
		{"every node has it", map[string]map[string]string{"c-control-plane": {ref: id}, "c-worker": {ref: id}}, map[string]string{ref: strings.TrimPrefix(id, "sha256:")}, 0, "skipped skipped"},
		{"one node lacks it", map[string]map[string]string{"c-control-plane": {ref: id}}, map[string]string{ref: id}, 1, "skipped loaded"},
		{"one node has another image under the tag", map[string]map[string]string{"c-control-plane": {ref: id}, "c-worker": {ref: otherID}}, map[string]string{ref: id}, 1, "skipped loaded"},
		{"the runtime cannot tell the ID", map[string]map[string]string{"c-control-plane": {ref: id}, "c-worker": {ref: id}}, nil, 1, "skipped skipped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &idRuntime{scriptedRuntime: &scriptedRuntime{nodes: twoNodes(), images: map[string]bool{ref: true}, exec: crictlImages(tc.have)}, ids: tc.ids, archive: archive}
			results, err := LoadImages(context.Background(), rt, "c", []string{ref}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range results {
				if r.Skipped {
					got = append(got, "skipped")
				} else {
					got = append(got, "loaded")
				}
			}
			if strings.Join(got, " ") != tc.want || rt.saves != tc.saves {
				t.Errorf("got %v with %d saves, want %s with %d", got, rt.saves, tc.want, tc.saves)
			}
		})
	}
}
