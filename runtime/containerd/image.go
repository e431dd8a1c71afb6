package containerd

import (
	"context"
	"fmt"
	"io"
	"strings"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/images/archive"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"

	"github.com/kinc-dev/kinc/runtime"
)

// normalizeRef turns "kindest/node:v1" (or go-containerregistry's
// "index.docker.io/kindest/node:v1") into "docker.io/kindest/node:v1", the
// form containerd stores names in.
func normalizeRef(ref string) string {
	if rest, ok := strings.CutPrefix(ref, "index.docker.io/"); ok {
		ref = "docker.io/" + rest
	}
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return ref
	}
	return named.String()
}

// image finds an image by its normalized name, the name as given, or, for a
// name without a registry, under localhost/ (where podman puts such names,
// so archives it saved name them so).
func (r *Runtime) image(ctx context.Context, ref string) (containerd.Image, error) {
	var err error
	for _, name := range candidateNames(ref) {
		var img containerd.Image
		if img, err = r.client.GetImage(ctx, name); err == nil {
			return img, nil
		} else if !isNotFound(err) {
			break
		}
	}
	return nil, fmt.Errorf("image %q: %w", ref, mapErr(err))
}

func candidateNames(ref string) []string {
	names := []string{normalizeRef(ref)}
	if ref != names[0] {
		names = append(names, ref)
	}
	if named, err := reference.ParseNormalizedNamed(ref); err == nil && reference.Domain(named) == "docker.io" && !strings.HasPrefix(ref, "docker.io/") && !strings.HasPrefix(ref, "index.docker.io/") {
		names = append(names, normalizeRef("localhost/"+ref))
	}
	return names
}

// ImageExists tells whether the namespace holds the image.
func (r *Runtime) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := r.image(r.ctx(ctx), ref)
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// LoadImage imports a docker-archive or oci-archive, unpacks its images for
// the snapshotter and returns their names.
func (r *Runtime) LoadImage(ctx context.Context, tar io.Reader) ([]string, error) {
	ctx = r.ctx(ctx)
	imgs, err := r.client.Import(ctx, tar, containerd.WithImageRefTranslator(ociRefName))
	if err != nil {
		return nil, fmt.Errorf("importing image archive: %w", mapErr(err))
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("importing image archive: it names no image: %w", runtime.ErrInvalid)
	}
	var names []string
	for _, i := range imgs {
		if i, err = r.renameImage(ctx, i, normalizeRef(i.Name)); err != nil {
			return nil, err
		}
		img := containerd.NewImage(r.client, i)
		if err := img.Unpack(ctx, r.snapshotter); err != nil {
			return nil, fmt.Errorf("unpacking image %q: %w", i.Name, mapErr(err))
		}
		names = append(names, i.Name)
	}
	return names, nil
}

// renameImage gives an image record the name lookups will use; archives
// may carry names in another spelling of the same reference.
func (r *Runtime) renameImage(ctx context.Context, img images.Image, name string) (images.Image, error) {
	if img.Name == name {
		return img, nil
	}
	is := r.client.ImageService()
	old := img.Name
	img.Name = name
	out, err := is.Update(ctx, img, "target")
	if isNotFound(err) {
		out, err = is.Create(ctx, img)
	}
	if err != nil {
		return img, fmt.Errorf("naming image %q: %w", name, mapErr(err))
	}
	if err := is.Delete(ctx, old); err != nil && !isNotFound(err) {
		return out, fmt.Errorf("renaming image %q: %w", old, mapErr(err))
	}
	return out, nil
}

// ociRefName names an image of an OCI archive from its ref.name annotation
// when that is a full reference; a bare tag ("v1") names nothing.
func ociRefName(name string) string {
	if !strings.ContainsAny(name, "/:@") {
		return ""
	}
	return normalizeRef(name)
}

// SaveImages writes the images, for this host's platform, as one archive
// that carries both an OCI index and docker's manifest.json, so that
// docker, podman and ctr can all load it.
func (r *Runtime) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	ctx = r.ctx(ctx)
	is := r.client.ImageService()
	opts := []archive.ExportOpt{
		archive.WithPlatform(platforms.DefaultStrict()),
		archive.WithSkipMissing(r.client.ContentStore()),
	}
	for _, ref := range refs {
		img, err := r.image(ctx, ref)
		if err != nil {
			return fmt.Errorf("saving images: %w", err)
		}
		opts = append(opts, archive.WithImage(is, img.Name()))
	}
	if err := r.client.Export(ctx, w, opts...); err != nil {
		return fmt.Errorf("saving images %s: %w", strings.Join(refs, ", "), mapErr(err))
	}
	return nil
}
