package cluster

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/kinc-dev/kinc/runtime"
)

// ArchiveImage is one image in an archive: its references and its ID (the
// digest of its config), which is what a node reports for an image it has.
type ArchiveImage struct {
	Refs []string
	ID   string
}

// LoadResult tells, per node, what an image load did.
type LoadResult struct {
	Node    string
	Skipped bool // the node had every image already
}

// ReadArchiveImages lists the images of a docker-archive (manifest.json).
func ReadArchiveImages(file string) ([]ArchiveImage, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("opening image archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s has no manifest.json: is it a docker-archive (`docker save`, `podman save`)?", file)
		}
		if err != nil {
			return nil, fmt.Errorf("reading image archive %s: %w", file, err)
		}
		if path.Clean(h.Name) != "manifest.json" {
			continue
		}
		var manifest []struct {
			Config   string
			RepoTags []string
		}
		if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
			return nil, fmt.Errorf("reading manifest.json of %s: %w", file, err)
		}
		var out []ArchiveImage
		for _, m := range manifest {
			id := strings.TrimSuffix(path.Base(m.Config), ".json")
			id = strings.TrimPrefix(strings.TrimPrefix(id, "sha256:"), "blobs/sha256/")
			out = append(out, ArchiveImage{Refs: m.RepoTags, ID: "sha256:" + id})
		}
		return out, nil
	}
}

// LoadArchive imports a docker-archive into the containerd of the named
// nodes (every node of the cluster when none is named), in parallel. A
// node that already has every image with the same ID is skipped.
func LoadArchive(ctx context.Context, rt runtime.Runtime, cluster, file string, only []string) ([]LoadResult, error) {
	images, err := ReadArchiveImages(file)
	if err != nil {
		return nil, err
	}
	targets, err := loadTargets(ctx, rt, cluster, only)
	if err != nil {
		return nil, err
	}
	return importArchive(ctx, rt, targets, file, images)
}

// LoadImages loads images from rt's own store into the named nodes (every
// node of the cluster when none is named): it saves them once to a
// temporary docker-archive, then imports that as LoadArchive does, so a
// node that already has every image with the same ID is skipped.
func LoadImages(ctx context.Context, rt runtime.Runtime, cluster string, refs, only []string) ([]LoadResult, error) {
	if len(refs) == 0 {
		return nil, fmt.Errorf("loading images: none named: %w", runtime.ErrInvalid)
	}
	targets, err := loadTargets(ctx, rt, cluster, only)
	if err != nil {
		return nil, err
	}
	for _, ref := range refs {
		ok, err := rt.ImageExists(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("looking up image %q: %w", ref, err)
		}
		if !ok {
			return nil, fmt.Errorf("image %q %w in %s: pull or build it first", ref, runtime.ErrNotFound, runtimeName(ctx, rt))
		}
	}
	if upToDate(ctx, rt, targets, refs) {
		results := make([]LoadResult, len(targets))
		for i, t := range targets {
			results[i] = LoadResult{Node: t, Skipped: true}
		}
		return results, nil
	}
	tmp, err := os.CreateTemp("", "kinc-load-*.tar")
	if err != nil {
		return nil, fmt.Errorf("saving images: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = rt.SaveImages(ctx, refs, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", runtimeName(ctx, rt), err)
	}
	images, err := ReadArchiveImages(tmp.Name())
	if err != nil {
		return nil, err
	}
	return importArchive(ctx, rt, targets, tmp.Name(), images)
}

// imageIDer is an optional ability of a runtime: the ID of an image in its
// store (its config digest, as crictl reports it in a node), without
// saving it.
type imageIDer interface {
	ImageID(ctx context.Context, ref string) (string, error)
}

// upToDate tells whether every target node already has every image, when
// the runtime can tell the images' IDs: loading them again then costs no
// save of possibly large images. Without that ability, or on any doubt,
// it is false and the images are saved and checked from the archive.
func upToDate(ctx context.Context, rt runtime.Runtime, targets, refs []string) bool {
	ider, ok := rt.(imageIDer)
	if !ok {
		return false
	}
	var images []ArchiveImage
	for _, ref := range refs {
		id, err := ider.ImageID(ctx, ref)
		if err != nil || id == "" {
			return false
		}
		if !strings.HasPrefix(id, "sha256:") {
			id = "sha256:" + id
		}
		images = append(images, ArchiveImage{Refs: []string{ref}, ID: id})
	}
	errStale := errors.New("stale")
	return forEach(ctx, targets, func(ctx context.Context, name string) error {
		if !(node{rt, name}).hasImages(ctx, images) {
			return errStale
		}
		return nil
	}) == nil
}

// runtimeName names the backend for messages; a backend that cannot say
// is "the runtime".
func runtimeName(ctx context.Context, rt runtime.Runtime) string {
	if info, err := rt.Info(ctx); err == nil && info.Name != "" {
		return info.Name
	}
	return "the runtime"
}

// importArchive imports file, which holds images, into every target node
// in parallel, skipping the nodes that have them all already.
func importArchive(ctx context.Context, rt runtime.Runtime, targets []string, file string, images []ArchiveImage) ([]LoadResult, error) {
	results := make([]LoadResult, len(targets))
	for i, t := range targets {
		results[i].Node = t
	}
	err := forEach(ctx, results, func(ctx context.Context, r LoadResult) error {
		n := node{rt, r.Node}
		if n.hasImages(ctx, images) {
			markSkipped(results, r.Node)
			return nil
		}
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		err = rt.Exec(ctx, n.name, runtime.ExecSpec{Cmd: []string{"ctr", "--namespace=k8s.io", "images", "import", "--all-platforms", "--digests", "-"}, Stdin: f})
		if err != nil {
			return fmt.Errorf("importing %s into %s: %w", imageNames(images), n.name, err)
		}
		return nil
	})
	return results, err
}

// imageNames is the images' references (or IDs when untagged), for messages.
func imageNames(images []ArchiveImage) string {
	var names []string
	for _, img := range images {
		if len(img.Refs) == 0 {
			names = append(names, img.ID)
		}
		names = append(names, img.Refs...)
	}
	return strings.Join(names, ", ")
}

func markSkipped(results []LoadResult, name string) {
	for i := range results {
		if results[i].Node == name {
			results[i].Skipped = true
		}
	}
}

// loadTargets is the cluster's nodes (not its load balancer), or the named
// ones, which must belong to it.
func loadTargets(ctx context.Context, rt runtime.Runtime, cluster string, only []string) ([]string, error) {
	nodes, err := Nodes(ctx, rt, cluster)
	if err != nil {
		return nil, err
	}
	var all []string
	for _, n := range nodes {
		if n.Labels[runtime.LabelRole] != RoleLoadBalancer {
			all = append(all, n.Name)
		}
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("cluster %q %w (list clusters with `kinc get clusters`)", cluster, runtime.ErrNotFound)
	}
	if len(only) == 0 {
		return all, nil
	}
	var targets []string
	for _, n := range only {
		if !slices.Contains(all, n) {
			return nil, fmt.Errorf("node %q is not in cluster %q (its nodes: %s)", n, cluster, strings.Join(all, ", "))
		}
		if !slices.Contains(targets, n) {
			targets = append(targets, n)
		}
	}
	return targets, nil
}

// hasImages tells whether the node's containerd has every image, by
// reference and ID (what crictl reports as the image's id): a reference
// that names a different image in the node does not count. An untagged
// image is looked up by its ID alone.
func (n node) hasImages(ctx context.Context, images []ArchiveImage) bool {
	for _, img := range images {
		refs := img.Refs
		if len(refs) == 0 {
			refs = []string{img.ID}
		}
		for _, ref := range refs {
			out, err := n.output(ctx, "crictl", "inspecti", "-o", "go-template", "--template", "{{.status.id}}", ref)
			if err != nil || strings.TrimSpace(out) != img.ID {
				return false
			}
		}
	}
	return len(images) > 0
}
