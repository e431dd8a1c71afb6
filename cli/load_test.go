package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/runtime"
)

func TestPositionalArgs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		want  string // positional args, then name= and nodes=
		error string
	}{
		{"flags first", []string{"--name", "c", "img"}, "img name=c nodes=", ""},
		{"flags after", []string{"a", "--name", "c", "b", "--nodes=x,y"}, "a b name=c nodes=x,y", ""},
		{"single dash", []string{"a", "-name", "c"}, "a name=c nodes=", ""},
		{"double dash ends flags", []string{"a", "--", "--name"}, "a --name name= nodes=", ""},
		{"unknown flag", []string{"a", "--nmae", "c"}, "", "flag provided but not defined: --nmae"},
		{"missing value", []string{"a", "--name"}, "", "flag needs an argument: --name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			app := &cli.App{Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{}, ExitErrHandler: func(*cli.Context, error) {}, Commands: []*cli.Command{{
				Name:  "cmd",
				Flags: []cli.Flag{nameFlag, nodesFlag},
				Action: func(c *cli.Context) error {
					args, err := positionalArgs(c)
					if err != nil {
						return err
					}
					got = strings.Join(append(args, "name="+c.String("name"), "nodes="+c.String("nodes")), " ")
					return nil
				},
			}}}
			err := app.Run(append([]string{"kinc", "cmd"}, tc.args...))
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) {
					t.Fatalf("error %v, want %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLoadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"load", "image"}, "name at least one image"},
		{[]string{"load", "image", "--name", "c"}, "name at least one image"},
		{[]string{"load", "image-archive"}, "name one image archive"},
		{[]string{"load", "image-archive", "a.tar", "b.tar"}, "name one image archive"},
		{[]string{"load", "image", "img", "--bogus"}, "flag provided but not defined: --bogus"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errOut := run(t, "", tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

// testImage is an image made with go-containerregistry whose one file
// holds content: two contents, two images (two IDs) under one tag.
func testImage(t *testing.T, content string) v1.Image {
	t.Helper()
	return singleFileImage(t, runtime.File{Name: "content", Content: []byte(content), Mode: 0o644}, nil)
}

// singleFileImage is an amd64 image of one file at /, which is also its
// entrypoint, exposing the given ports.
func singleFileImage(t *testing.T, f runtime.File, ports map[string]struct{}) v1.Image {
	t.Helper()
	layer, err := tarball.LayerFromReader(runtime.TarFiles(f))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Config.Entrypoint = []string{"/" + f.Name}
	cfg.Config.ExposedPorts = ports
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// toArchive writes img tagged ref as a docker-archive.
func toArchive(t *testing.T, ref string, img v1.Image) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		t.Fatal(err)
	}
	return file
}

// intoRuntime loads the archive into the runtime's own store.
func intoRuntime(t *testing.T, rtName, archive string) {
	t.Helper()
	ctx := context.Background()
	rt := openTestRuntime(t, rtName)
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := rt.LoadImage(ctx, f); err != nil {
		t.Fatalf("loading %s into %s: %v", archive, rtName, err)
	}
}

// removeTestImages removes what the test put in the runtime's own store:
// the reference and every image it pointed to. The runtime layer has no
// image removal (kinc never removes users' images), so the runtimes' own
// tools do it here.
func removeTestImages(t *testing.T, rtName, ref string, ids ...string) {
	var cmds [][]string
	switch rtName {
	case "podman", "docker":
		for _, id := range ids {
			cmds = append(cmds, []string{rtName, "rmi", "-f", strings.TrimPrefix(id, "sha256:")})
		}
	case "containerd":
		cmds = append(cmds, []string{"ctr", "-n", "kinc", "images", "rm", "--sync", ref})
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil && !strings.Contains(strings.ToLower(string(out)), "no such image") && !strings.Contains(string(out), "not found") {
			t.Logf("cleanup %v: %v: %s", c, err, out)
		}
	}
}

// TestLoadAndExportLogs makes one single-node cluster on the first test
// runtime and checks, on it, `load image` and `load image-archive` (the
// second load of the same image is skipped, a different image under the
// same tag loads) and `export logs`.
func TestLoadAndExportLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a real cluster")
	}
	rt := testRuntimes()[0]
	ensureNodeImage(t, rt)
	const clusterName = "e2e-load"
	kc := filepath.Join(t.TempDir(), "config")
	freshCluster(t, rt, clusterName, kc)
	if code, out, errOut := run(t, "", "--runtime", rt, "create", "cluster", "--name", clusterName, "--kubeconfig", kc, "--wait", "3m"); code != 0 {
		t.Fatalf("create: exit %d\n%s\n%s", code, out, errOut)
	}
	node := clusterName + "-control-plane"

	const ref = "localhost/kinc-load-test:1"
	first, second := testImage(t, "first"), testImage(t, "second")
	firstArchive, secondArchive := toArchive(t, ref, first), toArchive(t, ref, second)
	firstID, _ := first.ConfigName()
	secondID, _ := second.ConfigName()
	t.Cleanup(func() { removeTestImages(t, rt, ref, firstID.String(), secondID.String()) })
	// The node's own view of the image under ref.
	nodeImageID := func() string {
		t.Helper()
		out, err := execIn(rt, node, "crictl", "inspecti", "-o", "go-template", "--template", "{{.status.id}}", ref)
		if err != nil {
			t.Fatalf("crictl inspecti %s: %v", ref, err)
		}
		return strings.TrimSpace(out)
	}
	load := func(want string, args ...string) time.Duration {
		t.Helper()
		start := time.Now()
		code, _, errOut := run(t, "", append([]string{"--runtime", rt}, args...)...)
		took := time.Since(start)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		if line := want + " " + node; !strings.Contains(errOut, line) {
			t.Fatalf("%s: output lacks %q:\n%s", strings.Join(args, " "), line, errOut)
		}
		return took
	}
	const loaded, skipped = "Image loaded on node", "Image already present on node"

	t.Run("load image", func(t *testing.T) {
		intoRuntime(t, rt, firstArchive)
		took1 := load(loaded, "load", "image", ref, "--name", clusterName)
		if got := nodeImageID(); got != firstID.String() {
			t.Fatalf("node has %s as %s, want %s", ref, got, firstID)
		}
		took2 := load(skipped, "load", "image", ref, "--name", clusterName, "--nodes", node)
		t.Logf("load image: first %s, again (skipped) %s", took1.Round(time.Millisecond), took2.Round(time.Millisecond))

		// The same tag on a different image is not the same image.
		intoRuntime(t, rt, secondArchive)
		load(loaded, "load", "image", ref, "--name", clusterName)
		if got := nodeImageID(); got != secondID.String() {
			t.Fatalf("after loading the retagged image the node has %s, want %s", got, secondID)
		}

		code, _, errOut := run(t, "", "--runtime", rt, "load", "image", "localhost/kinc-load-test:absent", "--name", clusterName)
		if code != 1 || !strings.Contains(errOut, `image "localhost/kinc-load-test:absent" not found in `+rt+": pull or build it first") {
			t.Errorf("absent image: exit %d, %s", code, errOut)
		}
		code, _, errOut = run(t, "", "--runtime", rt, "load", "image", ref, "--name", clusterName, "--nodes", clusterName+"-worker")
		if code != 1 || !strings.Contains(errOut, `node "`+clusterName+`-worker" is not in cluster`) {
			t.Errorf("absent node: exit %d, %s", code, errOut)
		}
	})

	t.Run("load image-archive", func(t *testing.T) {
		// The node has the second image under ref: the first one loads.
		took1 := load(loaded, "load", "image-archive", firstArchive, "--name", clusterName)
		if got := nodeImageID(); got != firstID.String() {
			t.Fatalf("node has %s as %s, want %s", ref, got, firstID)
		}
		took2 := load(skipped, "load", "image-archive", firstArchive, "--name", clusterName)
		t.Logf("load image-archive: first %s, again (skipped) %s", took1.Round(time.Millisecond), took2.Round(time.Millisecond))
	})

	t.Run("export logs", func(t *testing.T) { exportLogs(t, rt, clusterName) })
}

// execIn runs a command in a container and returns its stdout.
func execIn(rtName, container string, cmd ...string) (string, error) {
	ctx := context.Background()
	rt, err := runtime.Detect(ctx, rtName)
	if err != nil {
		return "", err
	}
	defer rt.Close()
	var out bytes.Buffer
	err = rt.Exec(ctx, container, runtime.ExecSpec{Cmd: cmd, Stdout: &out})
	return out.String(), err
}
