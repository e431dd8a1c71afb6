package containerd

import (
	"bytes"
	"context"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kinc-dev/kinc/nodeimage"
)

func TestNormalizeRef(t *testing.T) {
	tests := map[string]string{
		"kindest/node:v1.34.4":            "docker.io/kindest/node:v1.34.4",
		"index.docker.io/kindest/node:v1": "docker.io/kindest/node:v1",
		"docker.io/library/debian":        "docker.io/library/debian:latest",
		"localhost/kinc/node:v1":          "localhost/kinc/node:v1",
		"registry.k8s.io/pause:3.10":      "registry.k8s.io/pause:3.10",
		"localhost:5000/kinc/node:v1":     "localhost:5000/kinc/node:v1",
		"Not A Reference":                 "Not A Reference",
	}
	for in, want := range tests {
		if got := normalizeRef(in); got != want {
			t.Errorf("normalizeRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCandidateNames(t *testing.T) {
	tests := map[string][]string{
		"kinc/node:v1":                 {"docker.io/kinc/node:v1", "kinc/node:v1", "localhost/kinc/node:v1"},
		"docker.io/kinc/node:v1":       {"docker.io/kinc/node:v1"},
		"localhost/kinc/node:v1":       {"localhost/kinc/node:v1"},
		"registry.k8s.io/pause:3.10":   {"registry.k8s.io/pause:3.10"},
		"index.docker.io/kinc/node:v1": {"docker.io/kinc/node:v1", "index.docker.io/kinc/node:v1"},
	}
	for in, want := range tests {
		if got := candidateNames(in); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("candidateNames(%q) = %v, want %v", in, got, want)
		}
	}
}

// An OCI archive as nodeimage writes it, named the way go-containerregistry
// spells Docker Hub references, is found again under the short name.
func TestLoadOCIArchive(t *testing.T) {
	r, _ := newHostTestRuntime(t)
	ctx := context.Background()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag := name.MustParseReference("kinc-oci-test/random:v1").(name.Tag)
	var buf bytes.Buffer
	if err := nodeimage.WriteOCIArchive(&buf, img, tag); err != nil {
		t.Fatal(err)
	}
	names, err := r.LoadImage(ctx, &buf)
	if err != nil {
		t.Fatalf("LoadImage: %v", err)
	}
	t.Cleanup(func() {
		_ = r.client.ImageService().Delete(r.ctx(context.Background()), "docker.io/kinc-oci-test/random:v1")
	})
	if len(names) != 1 || names[0] != "docker.io/kinc-oci-test/random:v1" {
		t.Errorf("LoadImage = %v, want [docker.io/kinc-oci-test/random:v1]", names)
	}
	for _, ref := range []string{"kinc-oci-test/random:v1", "docker.io/kinc-oci-test/random:v1"} {
		if ok, err := r.ImageExists(ctx, ref); !ok || err != nil {
			t.Errorf("ImageExists(%q) = %v, %v; want true", ref, ok, err)
		}
	}
	if ok, _ := r.ImageExists(ctx, "index.docker.io/kinc-oci-test/random:v1"); !ok {
		t.Error("the index.docker.io spelling is not found")
	}
	if _, err := r.client.GetImage(r.ctx(ctx), "index.docker.io/kinc-oci-test/random:v1"); err == nil {
		t.Error("the index.docker.io record is still there beside the renamed one")
	}
}
