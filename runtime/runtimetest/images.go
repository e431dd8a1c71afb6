package runtimetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kinc-dev/kinc/nodeimage"
	"github.com/kinc-dev/kinc/runtime"
)

//go:embed testdata/testbin.go.txt
var testbinSource []byte

// testbinRepo names the small image; its tag is a hash of what made it.
const testbinRepo = "localhost/kinc-test/testbin"

// cacheDir is where built test images are kept between runs.
func cacheDir() (string, error) {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(home, ".cache")
	}
	dir = filepath.Join(dir, "kinc", "runtimetest")
	return dir, os.MkdirAll(dir, 0o755)
}

// TestbinArchive returns the path of a docker-archive holding a tiny image
// whose only file is a static Go program (testdata/testbin.go.txt) that
// serves a banner on TCP 8080 as PID 1 and offers echo, cat, exit, dial...
// to exec. It is built with the local Go toolchain and go-containerregistry
// and cached; no registry, no daemon.
func TestbinArchive(t testing.TB) (ref, path string) {
	t.Helper()
	dir, err := cacheDir()
	if err != nil {
		t.Fatalf("cache directory: %v", err)
	}
	sum := sha256.Sum256(append(append([]byte{}, testbinSource...), goruntime.Version()...))
	tag := hex.EncodeToString(sum[:])[:12]
	ref = testbinRepo + ":" + tag
	path = filepath.Join(dir, "testbin-"+tag+".tar")
	if _, err := os.Stat(path); err == nil {
		return ref, path
	}
	unlock := lock(t, path+".lock")
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return ref, path
	}

	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "main.go"), testbinSource, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module testbin\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(src, "testbin")
	cmd := exec.Command(goBinary(), "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off", "GO111MODULE=on")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testbin: %v\n%s", err, out)
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromReader(runtime.TarFiles(runtime.File{Name: "testbin", Content: content, Mode: 0o755}))
	if err != nil {
		t.Fatalf("testbin layer: %v", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Entrypoint = []string{"/testbin"}
	cfg.Cmd = []string{"serve"}
	cfg.StopSignal = runtime.StopSignal
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cf, err = img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tagRef, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tagRef, img); err != nil {
		t.Fatalf("writing %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return ref, path
}

// SystemdArchive returns kinc's base node image as a docker-archive (Debian
// with systemd, made by nodeimage with debootstrap, cached after the first
// build, which needs root and takes a minute or two).
func SystemdArchive(t testing.TB) (ref, path string) {
	t.Helper()
	dir, err := cacheDir()
	if err != nil {
		t.Fatalf("cache directory: %v", err)
	}
	// Two test binaries (one per backend) may build it at once.
	unlock := lock(t, filepath.Join(dir, "base.lock"))
	defer unlock()
	path, err = nodeimage.CachedBaseArchive(context.Background())
	if err != nil {
		t.Fatalf("building the base node image: %v", err)
	}
	return nodeimage.DefaultBaseImage, path
}

// EnsureImage loads the archive into rt unless ref is there already.
func EnsureImage(t testing.TB, rt runtime.Runtime, ref, archive string) {
	t.Helper()
	ctx := context.Background()
	ok, err := rt.ImageExists(ctx, ref)
	if err != nil {
		t.Fatalf("ImageExists(%q): %v", ref, err)
	}
	if ok {
		return
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := rt.LoadImage(ctx, f); err != nil {
		t.Fatalf("LoadImage(%s): %v", archive, err)
	}
	if ok, err := rt.ImageExists(ctx, ref); err != nil || !ok {
		t.Fatalf("after loading %s, ImageExists(%q) = %v, %v; want true", archive, ref, ok, err)
	}
}

func goBinary() string {
	if p := filepath.Join(goruntime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// lock takes an exclusive flock on path, for builds shared between test
// processes.
func lock(t testing.TB, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}

// readArchiveTags lists the tags a docker-archive names.
func readArchiveTags(archive []byte) ([]string, error) {
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(archive)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading docker-archive manifest: %w", err)
	}
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	return tags, nil
}

// testbinImage reads the image ref from the testbin archive, and parses to.
func testbinImage(t testing.TB, ref, to string) (v1.Image, name.Tag) {
	t.Helper()
	_, path := TestbinArchive(t)
	from, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, &from)
	if err != nil {
		t.Fatalf("reading %s from %s: %v", ref, path, err)
	}
	tag, err := name.NewTag(to)
	if err != nil {
		t.Fatal(err)
	}
	return img, tag
}

// retag returns a docker-archive of the image ref (from the testbin
// archive) under the name to.
func retag(t testing.TB, ref, to string) []byte {
	t.Helper()
	img, tag := testbinImage(t, ref, to)
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatalf("writing %s: %v", to, err)
	}
	return buf.Bytes()
}

// ociArchive returns an oci-archive (as nodeimage writes them) of the image
// ref from the testbin archive, named to.
func ociArchive(t testing.TB, ref, to string) []byte {
	t.Helper()
	img, tag := testbinImage(t, ref, to)
	var buf bytes.Buffer
	if err := nodeimage.WriteOCIArchive(&buf, img, tag); err != nil {
		t.Fatalf("writing oci-archive %s: %v", to, err)
	}
	return buf.Bytes()
}
