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
	results := make([]LoadResult, len(targets))
	for i, t := range targets {
		results[i].Node = t
	}
	err = forEach(ctx, results, func(ctx context.Context, r LoadResult) error {
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
			return fmt.Errorf("importing %s into %s: %w", file, n.name, err)
		}
		return nil
	})
	return results, err
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
		return nil, fmt.Errorf("cluster %q not found: %w (list clusters with `kinc get clusters`)", cluster, runtime.ErrNotFound)
	}
	if len(only) == 0 {
		return all, nil
	}
	for _, n := range only {
		if !slices.Contains(all, n) {
			return nil, fmt.Errorf("node %q is not in cluster %q (its nodes: %s)", n, cluster, strings.Join(all, ", "))
		}
	}
	return only, nil
}

// hasImages tells whether the node's containerd has every image, by
// reference and ID (what crictl reports as the image's id).
func (n node) hasImages(ctx context.Context, images []ArchiveImage) bool {
	for _, img := range images {
		for _, ref := range img.Refs {
			out, err := n.output(ctx, "crictl", "inspecti", "-o", "go-template", "--template", "{{.status.id}}", ref)
			if err != nil || strings.TrimSpace(out) != img.ID {
				return false
			}
		}
	}
	return len(images) > 0
}
