package docker

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kinc-dev/kinc/nodeimage"
)

func TestWithDockerManifest(t *testing.T) {
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("localhost/kinc/oci-test:v1")
	if err != nil {
		t.Fatal(err)
	}
	var oci, docker bytes.Buffer
	if err := nodeimage.WriteOCIArchive(&oci, img, tag); err != nil {
		t.Fatal(err)
	}
	if err := tarball.Write(tag, img, &docker); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		archive []byte
	}{
		{"oci-archive gets a manifest.json", oci.Bytes()},
		{"docker-archive passes through", docker.Bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := withDockerManifest(bytes.NewReader(tt.archive), &out); err != nil {
				t.Fatal(err)
			}
			opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out.Bytes())), nil }
			m, err := tarball.LoadManifest(opener)
			if err != nil {
				t.Fatalf("reading the result as a docker-archive: %v", err)
			}
			if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != tag.Name() || len(m[0].Layers) != 3 {
				t.Fatalf("manifest.json = %+v", m)
			}
			got, err := tarball.Image(opener, &tag)
			if err != nil {
				t.Fatal(err)
			}
			assertSameImage(t, img, got)
		})
	}
	t.Run("garbage", func(t *testing.T) {
		if err := withDockerManifest(bytes.NewReader([]byte("not a tar archive at all")), io.Discard); err == nil {
			t.Error("no error for garbage")
		}
	})
}

func assertSameImage(t *testing.T, want, got v1.Image) {
	t.Helper()
	wc, _ := want.ConfigName()
	gc, err := got.ConfigName()
	if err != nil || gc != wc {
		t.Errorf("config %s, %v; want %s", gc, err, wc)
	}
	wl, _ := want.Layers()
	gl, err := got.Layers()
	if err != nil || len(gl) != len(wl) {
		t.Fatalf("layers %d, %v; want %d", len(gl), err, len(wl))
	}
	for i := range wl {
		wd, _ := wl[i].DiffID()
		gd, err := gl[i].DiffID()
		if err != nil || gd != wd {
			t.Errorf("layer %d diffID %s, %v; want %s", i, gd, err, wd)
		}
	}
}
