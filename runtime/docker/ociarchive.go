package docker

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	goruntime "runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Annotations an OCI index names its images with.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// maxKeptBlob bounds the blobs kept in memory while streaming an archive:
// indexes and manifests are a few KiB.
const maxKeptBlob = 1 << 20

// withDockerManifest copies the tar stream r to w and, when r is an OCI image
// layout without docker's manifest.json, appends one made from index.json.
// Docker before 25 loads only docker-archives, whose manifest.json may point
// at any path in the tar, so the OCI blobs serve as they are.
func withDockerManifest(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	kept := map[string][]byte{}
	hasManifest := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading image archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "manifest.json" {
			hasManifest = true
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg && h.Size <= maxKeptBlob && (name == "index.json" || strings.HasPrefix(name, "blobs/")) {
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("reading %s from image archive: %w", name, err)
			}
			if len(data) > 0 && data[0] == '{' {
				kept[name] = data
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
			continue
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	if index, ok := kept["index.json"]; ok && !hasManifest {
		manifest, err := dockerManifest(index, kept)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Mode: 0o644, Size: int64(len(manifest))}); err != nil {
			return err
		}
		if _, err := tw.Write(manifest); err != nil {
			return err
		}
	}
	return tw.Close()
}

// dockerManifestEntry is one image of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerManifest makes manifest.json from an OCI index, following nested
// indexes to the manifest for this machine's platform.
func dockerManifest(index []byte, blobs map[string][]byte) ([]byte, error) {
	var entries []dockerManifestEntry
	var walk func(raw []byte, tags []string, depth int) error
	walk = func(raw []byte, tags []string, depth int) error {
		if depth > 4 {
			return fmt.Errorf("image archive: indexes nested too deep")
		}
		var idx v1.IndexManifest
		if err := json.Unmarshal(raw, &idx); err != nil {
			return fmt.Errorf("image archive: parsing index: %w", err)
		}
		for _, d := range idx.Manifests {
			names := tags
			if n := refName(d.Annotations); n != "" {
				names = []string{n}
			}
			data, ok := blobs[blobPath(d.Digest)]
			if !ok {
				return fmt.Errorf("image archive: blob %s missing", d.Digest)
			}
			if d.MediaType.IsIndex() {
				if err := walk(data, names, depth+1); err != nil {
					return err
				}
				continue
			}
			if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != goruntime.GOARCH) {
				continue
			}
			var m v1.Manifest
			if err := json.Unmarshal(data, &m); err != nil {
				return fmt.Errorf("image archive: parsing manifest %s: %w", d.Digest, err)
			}
			e := dockerManifestEntry{Config: blobPath(m.Config.Digest), RepoTags: names}
			for _, l := range m.Layers {
				e.Layers = append(e.Layers, blobPath(l.Digest))
			}
			entries = append(entries, e)
		}
		return nil
	}
	if err := walk(index, nil, 0); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("image archive: no image for linux/%s", goruntime.GOARCH)
	}
	return json.Marshal(entries)
}

// refName is the full image name an index gives a manifest: containerd's
// annotation, else the OCI one when it is more than a bare tag.
func refName(a map[string]string) string {
	if n := a[annotationContainerdName]; n != "" {
		return n
	}
	if n := a[annotationRefName]; strings.ContainsAny(n, "/:") {
		return n
	}
	return ""
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }
