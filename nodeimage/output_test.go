package nodeimage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kinc-dev/kinc/runtime"
)

func TestParseOutput(t *testing.T) {
	tests := []struct {
		in      string
		want    Output
		wantErr string
	}{
		{"docker-archive:/tmp/base.tar", Output{DockerArchive, "/tmp/base.tar"}, ""},
		{"oci-archive:base.tar", Output{OCIArchive, "base.tar"}, ""},
		{"oci:./layout", Output{OCIDir, "./layout"}, ""},
		{"oci:C:dir", Output{OCIDir, "C:dir"}, ""},
		{"base.tar", Output{}, "want oci-archive:FILE, docker-archive:FILE or oci:DIR"},
		{"docker-archive:", Output{}, "want oci-archive:FILE"},
		{"tar:base.tar", Output{}, `unknown format "tar"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOutput(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

// testImage is a small image made the way BuildBase makes the base.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	root := makeTree(t)
	rootfs, err := LayerFromDir(context.Background(), root, WithLayerDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	files, err := NodeFilesLayer(context.Background(), DefaultContainerdConfig())
	if err != nil {
		t.Fatal(err)
	}
	o, err := newBaseOptions([]BaseOption{WithCacheDir(t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	img, err := baseImage(o, rootfs, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	return img
}

func TestBaseImageDeterministic(t *testing.T) {
	img1, img2 := testImage(t), testImage(t)
	d1, _ := img1.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Errorf("same inputs, different image digests: %s, %s", d1, d2)
	}
	mt, _ := img1.MediaType()
	if mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s", mt)
	}
	cfg, _ := img1.ConfigFile()
	if !cfg.Created.Time.Equal(Epoch) || len(cfg.History) != 2 || cfg.Config.StopSignal != "SIGRTMIN+3" {
		t.Errorf("config %+v", cfg)
	}
}

func sameImage(t *testing.T, want, got v1.Image) {
	t.Helper()
	wantCfg, _ := want.ConfigName()
	gotCfg, err := got.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if wantCfg != gotCfg {
		t.Errorf("config %s, want %s", gotCfg, wantCfg)
	}
	wl, _ := want.Layers()
	gl, err := got.Layers()
	if err != nil || len(gl) != len(wl) {
		t.Fatalf("%d layers (%v), want %d", len(gl), err, len(wl))
	}
	for i := range wl {
		wd, _ := wl[i].DiffID()
		gd, _ := gl[i].DiffID()
		if wd != gd {
			t.Errorf("layer %d diffID %s, want %s", i, gd, wd)
		}
	}
	if err := validate.Image(got); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
}

func TestWriteImage(t *testing.T) {
	ctx := context.Background()
	img := testImage(t)
	digest, _ := img.Digest()
	const ref = "kinc/base:test"
	tag, _ := name.NewTag(ref)

	t.Run("docker-archive", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "sub", "base.tar")
		if err := WriteImage(ctx, img, ref, Output{DockerArchive, p}); err != nil {
			t.Fatal(err)
		}
		got, err := tarball.ImageFromPath(p, &tag)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, got)
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(p) })
		if err != nil || len(m) != 1 || strings.Join(m[0].RepoTags, ",") != ref {
			t.Errorf("manifest %+v, %v; want RepoTags [%s]", m, err, ref)
		}
		read, err := ReadImage(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, read)
	})

	t.Run("oci-archive", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "base.oci.tar")
		if err := WriteImage(ctx, img, ref, Output{OCIArchive, p}); err != nil {
			t.Fatal(err)
		}
		dir := untar(t, p)
		lp, err := layout.FromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		idx, _ := lp.ImageIndex()
		m, err := idx.IndexManifest()
		if err != nil || len(m.Manifests) != 1 {
			t.Fatalf("index %+v, %v", m, err)
		}
		d := m.Manifests[0]
		if d.Digest != digest || d.Annotations[annotationContainerdName] != "index.docker.io/kinc/base:test" || d.Annotations[annotationRefName] != "test" {
			t.Errorf("descriptor %+v", d)
		}
		got, err := lp.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, got)
		// The same image gives the same archive.
		p2 := filepath.Join(t.TempDir(), "again.tar")
		if err := WriteImage(ctx, img, ref, Output{OCIArchive, p2}); err != nil {
			t.Fatal(err)
		}
		a, _ := os.ReadFile(p)
		b, _ := os.ReadFile(p2)
		if !bytes.Equal(a, b) {
			t.Error("two OCI archives of one image differ")
		}
		if _, err := ReadImage(p, nil); err == nil {
			t.Error("ReadImage of an OCI archive should say to extract it")
		}
	})

	t.Run("oci dir, replaced", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "layout")
		for i := 0; i < 2; i++ {
			if err := WriteImage(ctx, img, ref, Output{OCIDir, dir}); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		got, err := ReadImage(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, img, got)
		siblings, _ := os.ReadDir(filepath.Dir(dir))
		if len(siblings) != 1 {
			t.Errorf("temporary directories left: %v", siblings)
		}
	})

	t.Run("oci dir over other files", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "precious"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		err := WriteImage(ctx, img, ref, Output{OCIDir, dir})
		if err == nil || !strings.Contains(err.Error(), "not replacing it") {
			t.Fatalf("error %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "precious")); err != nil {
			t.Error("existing file lost")
		}
	})
}

// brokenLayer fails half-way through its content, like a disk error.
type brokenLayer struct{ v1.Layer }

func (b brokenLayer) Compressed() (io.ReadCloser, error) {
	rc, err := b.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.MultiReader(io.LimitReader(rc, 100), errReader{})), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestWriteImageLeavesNothingOnError(t *testing.T) {
	good, err := LayerFromDir(context.Background(), makeTree(t), InMemory())
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, brokenLayer{good})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []OutputFormat{DockerArchive, OCIArchive, OCIDir} {
		t.Run(string(format), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "out")
			err := WriteImage(context.Background(), img, "kinc/broken:1", Output{format, p})
			if err == nil {
				t.Fatal("write succeeded")
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("left %v behind after %v", left, err)
			}
		})
	}
	if err := WriteImage(context.Background(), img, "Bad Name", Output{DockerArchive, filepath.Join(t.TempDir(), "x")}); err == nil {
		t.Error("bad image name accepted")
	}
}

// archiveLoader is a runtime.Images that reads docker-archives as a daemon
// does: the whole stream, then the names in manifest.json.
type archiveLoader struct {
	runtime.Images
	stopEarly   bool // fails without reading
	stopAtNames bool // returns once it has the names, before the end marker
	read        int64
}

func (a *archiveLoader) LoadImage(ctx context.Context, r io.Reader) ([]string, error) {
	if a.stopEarly {
		return nil, errors.New("daemon went away")
	}
	// Like archive readers, stop at the end marker, before the padding.
	tr := tar.NewReader(r)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		a.read += int64(len(data))
		if h.Name == "manifest.json" {
			var m tarball.Manifest
			if err := json.Unmarshal(data, &m); err != nil {
				return nil, err
			}
			for _, d := range m {
				names = append(names, d.RepoTags...)
			}
			if a.stopAtNames {
				return names, nil
			}
		}
	}
}

func TestLoad(t *testing.T) {
	img := testImage(t)
	loader := &archiveLoader{}
	names, err := Load(context.Background(), loader, img, "kinc/base:test")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "kinc/base:test" || loader.read == 0 {
		t.Errorf("names %v after %d bytes", names, loader.read)
	}
	// A runtime that stops before the end of the stream still loaded it.
	names, err = Load(context.Background(), &archiveLoader{stopAtNames: true}, img, "kinc/base:test")
	if err != nil || len(names) != 1 {
		t.Errorf("stopping at the names: %v, %v", names, err)
	}
	// A runtime that fails without reading must not hang the writer.
	_, err = Load(context.Background(), &archiveLoader{stopEarly: true}, img, "kinc/base:test")
	if err == nil || !strings.Contains(err.Error(), "daemon went away") {
		t.Errorf("error %v", err)
	}
}

// untar extracts an archive into a new directory.
func untar(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, data, fs.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}
