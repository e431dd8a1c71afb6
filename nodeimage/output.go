package nodeimage

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kinc-dev/kinc/runtime"
)

// OutputFormat is how an image is written.
type OutputFormat string

const (
	// OCIArchive is an OCI image layout in a tar file.
	OCIArchive OutputFormat = "oci-archive"
	// DockerArchive is what `docker save` writes; docker, podman and
	// containerd all load it.
	DockerArchive OutputFormat = "docker-archive"
	// OCIDir is an OCI image layout in a directory.
	OCIDir OutputFormat = "oci"
)

// Annotations naming the image in an OCI index: containerd and podman read
// the first, the OCI spec defines the second.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// Output is where and how an image is written.
type Output struct {
	Format OutputFormat
	Path   string
}

func (o Output) String() string { return string(o.Format) + ":" + o.Path }

// ParseOutput reads an --output value: oci-archive:FILE, docker-archive:FILE
// or oci:DIR.
func ParseOutput(s string) (Output, error) {
	format, p, ok := strings.Cut(s, ":")
	if !ok || p == "" {
		return Output{}, fmt.Errorf("invalid output %q: want oci-archive:FILE, docker-archive:FILE or oci:DIR", s)
	}
	switch f := OutputFormat(format); f {
	case OCIArchive, DockerArchive, OCIDir:
		return Output{Format: f, Path: p}, nil
	}
	return Output{}, fmt.Errorf("invalid output %q: unknown format %q (want oci-archive, docker-archive or oci)", s, format)
}

// parseTag reads an image name; a name without a tag gets "latest".
func parseTag(ref string) (name.Tag, error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, fmt.Errorf("parsing image name %q: %w", ref, err)
	}
	return t, nil
}

// WriteImage writes img, named ref, to out. Nothing is left at out.Path
// unless the whole image was written: files go through a temporary file and
// a rename, directories through a temporary directory.
func WriteImage(ctx context.Context, img v1.Image, ref string, out Output) error {
	tag, err := parseTag(ref)
	if err != nil {
		return err
	}
	switch out.Format {
	case DockerArchive:
		return writeFileAtomically(out.Path, func(w io.Writer) error {
			return tarball.Write(tag, img, &ctxWriter{ctx: ctx, w: w})
		})
	case OCIArchive:
		return writeFileAtomically(out.Path, func(w io.Writer) error {
			return WriteOCIArchive(&ctxWriter{ctx: ctx, w: w}, img, tag)
		})
	case OCIDir:
		return writeOCIDir(out.Path, img, tag)
	}
	return fmt.Errorf("writing image: unknown output format %q", out.Format)
}

// Load streams img, named ref, as a docker-archive into the runtime and
// returns the names the runtime gave it.
func Load(ctx context.Context, images runtime.Images, img v1.Image, ref string) ([]string, error) {
	tag, err := parseTag(ref)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := tarball.Write(tag, img, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	names, err := images.LoadImage(ctx, pr)
	if err == nil {
		// A runtime may stop reading at the tar end marker: let the writer
		// finish its padding rather than fail it.
		_, _ = io.Copy(io.Discard, pr)
	}
	// Unblocks the writer if the runtime failed without reading it all.
	pr.CloseWithError(errors.New("load ended"))
	werr := <-done
	if err != nil {
		return nil, fmt.Errorf("loading image %q: %w", ref, err)
	}
	if werr != nil {
		return nil, fmt.Errorf("streaming image %q: %w", ref, werr)
	}
	return names, nil
}

// WriteOCIArchive writes img as an OCI image layout in one tar stream,
// blobs first and index.json last, in a fixed order: the same image gives
// the same bytes.
func WriteOCIArchive(w io.Writer, img v1.Image, tag name.Tag) error {
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("reading manifest: %w", err)
	}
	desc, err := imageDescriptor(img, tag)
	if err != nil {
		return err
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     "application/vnd.oci.image.index.v1+json",
		Manifests:     []v1.Descriptor{desc},
	})
	if err != nil {
		return err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading layers: %w", err)
	}
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: Epoch}); err != nil {
			return err
		}
	}
	file := func(p string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(data)), ModTime: Epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	written := map[v1.Hash]bool{}
	for _, l := range layers {
		digest, err := l.Digest()
		if err != nil {
			return err
		}
		if written[digest] {
			continue
		}
		written[digest] = true
		size, err := l.Size()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("reading layer %s: %w", digest, err)
		}
		err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath(digest), Mode: 0o644, Size: size, ModTime: Epoch})
		if err == nil {
			_, err = io.CopyN(tw, rc, size)
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("writing layer %s: %w", digest, err)
		}
	}
	if err := file(blobPath(cfgName), config); err != nil {
		return err
	}
	if err := file(blobPath(desc.Digest), manifest); err != nil {
		return err
	}
	if err := file("index.json", index); err != nil {
		return err
	}
	return tw.Close()
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// imageDescriptor describes img in an index, named as containerd and podman
// expect: the full reference, and the tag for the OCI spec's ref.name.
func imageDescriptor(img v1.Image, tag name.Tag) (v1.Descriptor, error) {
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{
		MediaType: mt,
		Size:      size,
		Digest:    digest,
		Annotations: map[string]string{
			annotationContainerdName: tag.Name(),
			annotationRefName:        tag.TagStr(),
		},
	}, nil
}

// writeFileAtomically writes a file through fill, into a temporary file
// beside p that is renamed over p only once complete.
func writeFileAtomically(p string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing %q: %w", p, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %q: %w", p, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := fill(f); err != nil {
		return fmt.Errorf("writing %q: %w", p, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %q: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %q: %w", p, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("writing %q: %w", p, err)
	}
	return nil
}

// writeOCIDir writes an OCI layout into a temporary directory beside dir,
// then swaps it in, so that an existing layout is replaced whole or not at
// all.
func writeOCIDir(dir string, img v1.Image, tag name.Tag) (err error) {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("writing OCI layout: %q exists and is not a directory", dir)
		}
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				return fmt.Errorf("writing OCI layout: %q is a non-empty directory without an OCI layout, not replacing it", dir)
			}
		}
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	desc, err := imageDescriptor(img, tag)
	if err != nil {
		return err
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(desc.Annotations)); err != nil {
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("replacing OCI layout %q: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return fmt.Errorf("writing OCI layout %q: %w", dir, err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// ReadImage reads an image written by WriteImage (or by docker save,
// podman save, skopeo): a docker-archive or OCI archive file, or an OCI
// layout directory; the format is found from the content. tag picks the
// image when the archive holds several (nil: the only one).
func ReadImage(p string, tag *name.Tag) (v1.Image, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("reading image: %w", err)
	}
	if fi.IsDir() {
		return imageFromLayout(p)
	}
	if isOCIArchive(p) {
		return nil, fmt.Errorf("reading image %q: OCI archives are read once extracted (oci:DIR); use a docker-archive", p)
	}
	img, err := tarball.ImageFromPath(p, tag)
	if err != nil {
		return nil, fmt.Errorf("reading image %q: %w", p, err)
	}
	return img, nil
}

func imageFromLayout(dir string) (v1.Image, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("reading OCI layout %q: want one image, found %d", dir, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %q: %w", dir, err)
	}
	return img, nil
}

// isOCIArchive tells a tarred OCI layout from a docker-archive by its
// oci-layout file.
func isOCIArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			return false
		}
		if strings.TrimPrefix(h.Name, "./") == "oci-layout" {
			return true
		}
		if strings.TrimPrefix(h.Name, "./") == "manifest.json" {
			return false
		}
	}
}

// ctxWriter stops a long write when ctx is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c *ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
