package podman

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/containers/podman/v4/pkg/bindings/images"
)

// ImageExists tells whether the image is in podman's store.
func (r *Runtime) ImageExists(ctx context.Context, ref string) (bool, error) {
	ok, err := images.Exists(r.ctx(ctx), ref, nil)
	return ok, r.mapErr(err, fmt.Sprintf("looking up image %q", ref))
}

// LoadImage loads a docker-archive or oci-archive.
func (r *Runtime) LoadImage(ctx context.Context, archive io.Reader) ([]string, error) {
	report, err := images.Load(r.ctx(ctx), archive)
	if err != nil {
		return nil, r.mapErr(err, "loading image archive")
	}
	var names []string
	for _, n := range report.Names {
		// podman reports "a,b" for an archive holding several tags.
		names = append(names, strings.Split(n, ",")...)
	}
	return names, nil
}

// SaveImages writes the images as one docker-archive.
func (r *Runtime) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	if len(refs) == 0 {
		return fmt.Errorf("saving images: no image named")
	}
	opts := new(images.ExportOptions).WithFormat("docker-archive").WithCompress(false)
	return r.mapErr(images.Export(r.ctx(ctx), refs, w, opts), fmt.Sprintf("saving images %s", strings.Join(refs, ", ")))
}
