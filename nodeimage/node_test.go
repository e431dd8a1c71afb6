package nodeimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kinc-dev/kinc/nodeimage/gobuild"
)

// v1344Images is what kubeadm v1.34.4 lists (ENVIRONMENT.md's table).
var v1344Images = []string{
	"registry.k8s.io/coredns/coredns:v1.12.1",
	"registry.k8s.io/etcd:3.6.5-0",
	"registry.k8s.io/kube-apiserver:v1.34.4",
	"registry.k8s.io/kube-controller-manager:v1.34.4",
	"registry.k8s.io/kube-proxy:v1.34.4",
	"registry.k8s.io/kube-scheduler:v1.34.4",
	"registry.k8s.io/pause:3.10.1",
}

// nodeImages is what a node image preloads: kubeadm's and the default
// CNI's.
var nodeImages = append([]string{FlannelImage, LocalPathImage}, v1344Images...)

// fakeKubeDir makes a directory of tiny stand-ins for every binary a node
// image takes; kubeadm answers the two questions the build asks.
func fakeKubeDir(t *testing.T, version string, skip ...string) string {
	t.Helper()
	dir := t.TempDir()
	kubeadm := fmt.Sprintf(`#!/bin/sh
case "$*" in
"version -o short") echo %s ;;
"config images list --kubernetes-version %s") printf '%%s\n' %s ;;
*) echo "fake kubeadm: $*" >&2; exit 1 ;;
esac
`, version, version, strings.Join(v1344Images, " "))
	for _, bin := range append(append([]string{}, kubeComponents...), addonBinaries...) {
		if hasString(skip, bin) {
			continue
		}
		content := "#!/bin/sh\necho fake " + bin + "\n"
		if bin == "kubeadm" {
			content = kubeadm
		}
		if err := os.WriteFile(filepath.Join(dir, bin), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// serverTarball packs a directory's binaries as a kubernetes-server
// tarball does, leaving out the ones named.
func serverTarball(t *testing.T, binDir string, leaveOut ...string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	entries, err := os.ReadDir(binDir)
	if err != nil {
		t.Fatal(err)
	}
	tw.WriteHeader(&tar.Header{Name: "kubernetes/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "kubernetes/server/bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, e := range entries {
		if hasString(leaveOut, e.Name()) || hasString(addonBinaries, e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(binDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: "kubernetes/server/bin/" + e.Name(), Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "kubernetes-server-linux-amd64.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testContainerdConfig names an older pause than kubeadm v1.34.4 wants.
const testContainerdConfig = `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
`

// testBase is a small base image with a CA bundle, iptables and a
// containerd config, plus the given entries, as a docker archive.
func testBase(t *testing.T, extra ...Entry) (v1.Image, string) {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := LayerFromEntries(context.Background(), append([]Entry{
		{Path: "/etc/ssl/certs/ca-certificates.crt", Data: []byte("-----BEGIN CERTIFICATE-----\nfake\n")},
		{Path: "/usr/sbin/iptables", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "/usr/sbin/ip6tables", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "/usr/sbin/nft", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "/etc/containerd/config.toml", Data: []byte(testContainerdConfig)},
	}, extra...), WithLayerDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.AppendLayers(img, certs); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "base.tar")
	if err := tarball.WriteToFile(p, name.MustParseReference("kinc/base:test"), img); err != nil {
		t.Fatal(err)
	}
	// What a docker archive gives back is the image every other source
	// must be given too, for the digests to compare.
	if img, err = tarball.ImageFromPath(p, nil); err != nil {
		t.Fatal(err)
	}
	return img, p
}

func buildNode(t *testing.T, opts ...NodeOption) *NodeImage {
	t.Helper()
	opts = append([]NodeOption{WithNodeWorkDir(t.TempDir())}, opts...)
	img, err := BuildNode(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	if err := validate.Image(img); err != nil {
		t.Fatalf("validating the node image: %v", err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// layerFiles lists a layer's entries as "path mode size" lines and
// returns the contents of the small files.
func layerFiles(t *testing.T, l v1.Layer) ([]string, map[string][]byte) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var lines []string
	files := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s %o", hdr.Name, hdr.Mode))
		if hdr.Typeflag == tar.TypeReg {
			data, _ := io.ReadAll(tr)
			files[hdr.Name] = data
		}
	}
	return lines, files
}

func TestBuildNodeFromDirectory(t *testing.T) {
	base, basePath := testBase(t)
	bins := fakeKubeDir(t, "v1.34.4")
	img := buildNode(t, WithKubeSource(bins), WithBaseImage("docker-archive:"+basePath))

	if img.Version != "v1.34.4" {
		t.Errorf("Version = %q, want the fake kubeadm's v1.34.4", img.Version)
	}
	if got := strings.Join(img.Images, "\n"); got != strings.Join(nodeImages, "\n") {
		t.Errorf("Images =\n%s\nwant\n%s", got, strings.Join(nodeImages, "\n"))
	}
	baseLayers, _ := base.Layers()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(baseLayers)+2 {
		t.Fatalf("%d layers, want the base's %d and 2", len(layers), len(baseLayers))
	}
	for i := range baseLayers {
		want, _ := baseLayers[i].Digest()
		if got, _ := layers[i].Digest(); got != want {
			t.Errorf("layer %d is %s, want the base's %s unchanged", i, got, want)
		}
	}

	kubeList, kubeFiles := layerFiles(t, layers[len(layers)-2])
	imageList, imageFiles := layerFiles(t, layers[len(layers)-1])
	got := "# Kubernetes layer\n" + strings.Join(kubeList, "\n") + "\n# images layer\n" + strings.Join(imageList, "\n") + "\n"
	golden := filepath.Join("testdata", "node-layers.golden")
	if *updateNodeGolden {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("node layers differ from %s:\n%s", golden, got)
	}
	if v := string(kubeFiles["kind/version"]); v != "v1.34.4\n" {
		t.Errorf("/kind/version = %q", v)
	}
	for _, bin := range []string{"kubelet", "crictl"} {
		if k := string(kubeFiles["usr/bin/"+bin]); k != "#!/bin/sh\necho fake "+bin+"\n" {
			t.Errorf("/usr/bin/%s = %q, want the fake", bin, k)
		}
	}
	if c, want := string(kubeFiles["etc/containerd/config.toml"]), strings.Replace(testContainerdConfig, "pause:3.10", "pause:3.10.1", 1); c != want {
		t.Errorf("containerd config =\n%s\nwant the base's with kubeadm's pause:\n%s", c, want)
	}

	if st := string(imageFiles["kind/manifests/default-storage.yaml"]); strings.Count(st, "image: "+LocalPathImage+"\n") != 2 || strings.Contains(st, "@LOCAL_PATH_IMAGE@") {
		t.Errorf("default-storage.yaml does not name %s twice:\n%s", LocalPathImage, st)
	}
	if cni := string(imageFiles["kind/manifests/default-cni.yaml"]); !strings.Contains(cni, "image: "+FlannelImage+"\n") || !strings.Contains(cni, `"Network": "{{ .PodSubnetV4 }}"`) || strings.Contains(cni, "@FLANNEL_IMAGE@") {
		t.Errorf("default-cni.yaml does not name %s or lacks {{ .PodSubnetV4 }}:\n%s", FlannelImage, cni)
	}

	t.Run("preloaded images", func(t *testing.T) {
		for _, ref := range nodeImages {
			tag, err := name.NewTag(ref)
			if err != nil {
				t.Fatal(err)
			}
			pimg, archive := preloadedImage(t, imageFiles, tag)
			if pimg == nil {
				continue
			}
			// One image an archive, but for those on the base, together.
			opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(archive)), nil }
			m, _ := tarball.LoadManifest(opener)
			if want := map[bool]int{true: 2, false: 1}[onBaseRepo(tag)]; len(m) != want {
				t.Errorf("archive of %s holds %d images, want %d", ref, len(m), want)
			}
			if err := validate.Image(pimg); err != nil {
				t.Errorf("archive of %s: %v", ref, err)
			}
			checkPreloaded(t, tag, pimg, base)
		}
	})

	t.Run("without the default CNI", func(t *testing.T) {
		img := buildNode(t, WithKubeSource(bins), WithBaseImage("docker-archive:"+basePath), WithDefaultCNI(false), WithDefaultStorage(false))
		if strings.Join(img.Images, "\n") != strings.Join(v1344Images, "\n") {
			t.Errorf("Images = %v, want kubeadm's only", img.Images)
		}
		layers, _ := img.Layers()
		list, _ := layerFiles(t, layers[len(layers)-1])
		for _, l := range list {
			if strings.Contains(l, "flannel") || strings.Contains(l, "local-path") || strings.Contains(l, "kind/manifests/default-") {
				t.Errorf("images layer holds %s", l)
			}
		}
	})
	t.Run("same inputs same digest", func(t *testing.T) {
		again := buildNode(t, WithKubeSource(bins), WithBaseImage("docker-archive:"+basePath))
		if a, b := digestOf(t, img), digestOf(t, again); a != b {
			t.Errorf("two builds gave %s and %s", a, b)
		}
	})
	t.Run("server tarball gives the same image", func(t *testing.T) {
		// A server tarball has no etcd, coredns or pause: the archives the
		// directory build made are given as extra images instead, which
		// also checks that an extra image replaces the one kinc builds.
		addons := t.TempDir()
		var extras []string
		for _, ref := range []string{"registry.k8s.io/coredns/coredns:v1.12.1", "registry.k8s.io/etcd:3.6.5-0", "registry.k8s.io/pause:3.10.1", FlannelImage, LocalPathImage} {
			tag, err := name.NewTag(ref)
			if err != nil {
				t.Fatal(err)
			}
			pimg, _ := preloadedImage(t, imageFiles, tag)
			p := filepath.Join(addons, archiveName(tag))
			if err := tarball.WriteToFile(p, tag, pimg); err != nil {
				t.Fatal(err)
			}
			extras = append(extras, p)
		}
		// Nor crictl: this base has one. And no Go: building anything
		// would fail this offline test loudly rather than pass slowly.
		_, withCrictl := testBase(t, Entry{Path: "/usr/bin/crictl", Mode: 0o755, Data: []byte("#!/bin/sh\n")})
		noBuild := WithGoBuild(gobuild.WithCacheDir(t.TempDir()), gobuild.WithGo("/nonexistent/go"))
		want := digestOf(t, buildNode(t, WithKubeSource(bins), WithBaseImage("docker-archive:"+withCrictl), WithExtraImages(extras...)))
		tgz := serverTarball(t, bins)
		fromTarball := buildNode(t, WithKubeSource(tgz), WithBaseImage("docker-archive:"+withCrictl), WithExtraImages(extras...), noBuild)
		if got := digestOf(t, fromTarball); got != want {
			t.Errorf("directory gave %s, tarball %s", want, got)
		}
		srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(tgz))))
		defer srv.Close()
		fromURL := buildNode(t, WithKubeSource(srv.URL+"/"+filepath.Base(tgz)), WithBaseImage("docker-archive:"+withCrictl), WithExtraImages(extras...), noBuild)
		if got := digestOf(t, fromURL); got != want {
			t.Errorf("directory gave %s, URL %s", want, got)
		}
	})
}

var updateNodeGolden = flag.Bool("update-node-golden", false, "rewrite the node-*.golden files")

// checkPreloaded checks an image's layout and config against upstream's.
func checkPreloaded(t *testing.T, tag name.Tag, img, base v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Time.Equal(Epoch) {
		t.Errorf("%s: os %q arch %q created %s", tag, cf.OS, cf.Architecture, cf.Created)
	}
	layers, _ := img.Layers()
	files := map[string]string{}
	for _, l := range layers {
		_, fs := layerFiles(t, l)
		for p, d := range fs {
			files[p] = string(d)
		}
	}
	repo := filepath.Base(tag.RepositoryStr())
	want := map[string]struct {
		bin        string
		entrypoint string
		user       string
	}{
		"kube-apiserver":          {"usr/local/bin/kube-apiserver", "/usr/local/bin/kube-apiserver", ""},
		"kube-controller-manager": {"usr/local/bin/kube-controller-manager", "/usr/local/bin/kube-controller-manager", ""},
		"kube-scheduler":          {"usr/local/bin/kube-scheduler", "/usr/local/bin/kube-scheduler", ""},
		"kube-proxy":              {"usr/local/bin/kube-proxy", "/usr/local/bin/kube-proxy", ""},
		"etcd":                    {"usr/local/bin/etcd", "", ""},
		"coredns":                 {"coredns", "/coredns", ""},
		"pause":                   {"pause", "/pause", "65535:65535"},
		"flannel":                 {"usr/local/bin/flanneld", "/usr/local/bin/flanneld", ""},
		"local-path-provisioner":  {"usr/local/bin/local-path-provisioner", "/usr/local/bin/local-path-provisioner", ""},
	}[repo]
	if files[want.bin] != "#!/bin/sh\necho fake "+filepath.Base(want.bin)+"\n" {
		t.Errorf("%s: %s = %q, want the fake binary", tag, want.bin, files[want.bin])
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != want.entrypoint {
		t.Errorf("%s: entrypoint %q, want %q", tag, got, want.entrypoint)
	}
	if cf.Config.User != want.user {
		t.Errorf("%s: user %q, want %q", tag, cf.Config.User, want.user)
	}
	if !hasString(cf.Config.Env, "PATH="+binPath) {
		t.Errorf("%s: env %v lacks PATH with /usr/sbin", tag, cf.Config.Env)
	}
	switch repo {
	case "kube-proxy", "flannel":
		// The base's network tools, and not the rest of the base.
		for _, f := range []string{"usr/sbin/iptables", "usr/sbin/ip6tables", "usr/sbin/nft"} {
			if files[f] == "" {
				t.Errorf("%s: no /%s from the base", tag, f)
			}
		}
		if files["etc/containerd/config.toml"] != "" || files["etc/ssl/certs/ca-certificates.crt"] != "" {
			t.Errorf("%s: has base files that are not network tools", tag)
		}
		if len(layers) != 2 {
			t.Errorf("%s: %d layers, want 2 (network tools, program)", tag, len(layers))
		}
		if repo == "flannel" && files["usr/local/bin/cniconf"] == "" {
			t.Errorf("%s: no cniconf", tag)
		}
	case "local-path-provisioner":
		if files["usr/local/bin/lphelper"] == "" {
			t.Errorf("%s: no lphelper", tag)
		}
	case "etcd":
		if files["usr/local/bin/etcdctl"] == "" || strings.Join(cf.Config.Cmd, " ") != "/usr/local/bin/etcd" {
			t.Errorf("%s: no etcdctl or cmd %v", tag, cf.Config.Cmd)
		}
		fallthrough
	default:
		if !strings.Contains(files["etc/passwd"], "root:x:0:0:") || !strings.Contains(files["etc/ssl/certs/ca-certificates.crt"], "fake") {
			t.Errorf("%s: passwd %q, certificates %q", tag, files["etc/passwd"], files["etc/ssl/certs/ca-certificates.crt"])
		}
	}
}

// TestBuildNodeBaseSources reads the base from each form --base-image
// takes; the node image must come out the same from all of them.
func TestBuildNodeBaseSources(t *testing.T) {
	base, basePath := testBase(t)
	bins := fakeKubeDir(t, "v1.34.4")

	layoutDir := t.TempDir()
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(base); err != nil {
		t.Fatal(err)
	}
	ociArchive := filepath.Join(t.TempDir(), "base.oci.tar")
	if out, err := exec.Command("tar", "-C", layoutDir, "-cf", ociArchive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(discardLogger())))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/kinc/base:test"
	regRef, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(regRef, base); err != nil {
		t.Fatal(err)
	}

	want := digestOf(t, buildNode(t, WithKubeSource(bins), WithBaseImage("docker-archive:"+basePath)))
	for _, src := range []string{"oci:" + layoutDir, "oci-archive:" + ociArchive, ref} {
		t.Run(src, func(t *testing.T) {
			img := buildNode(t, WithKubeSource(bins), WithBaseImage(src))
			if got := digestOf(t, img); got != want {
				t.Errorf("digest %s, want %s as from the docker archive", got, want)
			}
		})
	}

	t.Run("extra image from the registry", func(t *testing.T) {
		img := buildNode(t, WithKubeSource(bins), WithBaseImage(ref), WithExtraImages(ref))
		if !hasString(img.Images, ref) {
			t.Errorf("Images %v lack %s", img.Images, ref)
		}
		layers, _ := img.Layers()
		list, _ := layerFiles(t, layers[len(layers)-1])
		want := "kind/images/" + strings.NewReplacer("/", "_", ":", "_").Replace(ref) + ".tar 644"
		if !hasString(list, want) {
			t.Errorf("images layer %v lacks %s", list, want)
		}
	})
}

func TestBuildNodeErrors(t *testing.T) {
	_, basePath := testBase(t)
	bins := fakeKubeDir(t, "v1.34.4")
	noKubeProxy := fakeKubeDir(t, "v1.34.4", "kube-proxy")
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	reg := httptest.NewServer(registry.New(registry.Logger(discardLogger())))
	defer reg.Close()
	base := WithBaseImage("docker-archive:" + basePath)

	for _, tc := range []struct {
		name string
		opts []NodeOption
		want string
	}{
		{"missing base archive", []NodeOption{WithKubeSource(bins), WithBaseImage("docker-archive:/nonexistent/base.tar")}, `reading base image "docker-archive:/nonexistent/base.tar"`},
		{"bad base reference", []NodeOption{WithKubeSource(bins), WithBaseImage("Not A Reference")}, `reading base image "Not A Reference"`},
		{"base not in registry", []NodeOption{WithKubeSource(bins), WithBaseImage(strings.TrimPrefix(reg.URL, "http://") + "/kinc/base:nope")}, "/kinc/base:nope\": GET http"},
		{"missing binary", []NodeOption{WithKubeSource(noKubeProxy), base}, "missing kube-proxy"},
		{"no such source", []NodeOption{WithKubeSource("/nonexistent/kube"), base}, `reading Kubernetes source "/nonexistent/kube"`},
		{"tarball without kubelet", []NodeOption{WithKubeSource(serverTarball(t, bins, "kubelet")), base}, "missing kubernetes/server/bin/kubelet"},
		{"not a tarball", []NodeOption{WithKubeSource(filepath.Join(bins, "kubelet")), base}, "reading Kubernetes server tarball"},
		{"URL not found", []NodeOption{WithKubeSource(notFound.URL + "/kubernetes-server-linux-amd64.tar.gz"), base}, "404 Not Found"},
		{"version mismatch", []NodeOption{WithKubeSource(bins), WithKubernetesVersion("v1.35.4"), base}, "holds v1.34.4, not v1.35.4"},
		{"missing extra image", []NodeOption{WithKubeSource(bins), base, WithExtraImages(strings.TrimPrefix(reg.URL, "http://") + "/app:v1")}, `adding image`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			_, err := BuildNode(context.Background(), append([]NodeOption{WithNodeWorkDir(work)}, tc.opts...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %s", err, tc.want)
			}
			if entries, _ := os.ReadDir(work); len(entries) != 0 {
				t.Errorf("work directory keeps %d entries after a failure", len(entries))
			}
		})
	}
}

// TestBuildNodeUnknownVersion asks the proxy for a version it does not
// serve; the error must say so, before anything is built.
func TestBuildNodeUnknownVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("asks the Go module proxy")
	}
	_, basePath := testBase(t)
	work, cache := t.TempDir(), t.TempDir()
	_, err := BuildNode(context.Background(), WithBaseImage("docker-archive:"+basePath), WithKubernetesVersion("v1.34.99"),
		WithNodeWorkDir(work), WithGoBuild(gobuild.WithCacheDir(cache)))
	if err == nil || !strings.Contains(err.Error(), "Kubernetes v1.34.99 is not available from the Go module proxy") {
		t.Fatalf("err = %v", err)
	}
	for _, dir := range []string{work, cache} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s keeps %d entries after a failure", dir, len(entries))
		}
	}
}

// TestPause builds the pause program and checks it stops cleanly on the
// signals the runtime sends.
func TestPause(t *testing.T) {
	bins, err := gobuild.Build(context.Background(), gobuild.Module{
		Files: map[string]string{"pause/main.go": pauseSource}, Packages: []string{"./pause"},
	}, gobuild.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bins["pause"])
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Until the warning is out, the signal handler may not be set.
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(stderr.String(), "first process") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("pause exited with %v after %v, want 0; stderr %q", err, sig, stderr.String())
				}
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("pause still runs 5s after %v", sig)
			}
		})
	}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// TestBuildNodeReal builds the default node image for real: Kubernetes,
// etcd, coredns, crictl and pause through the Go module proxy (cached
// under ~/.cache/kinc/bin), on the default base image (built with
// debootstrap, or taken from the cache), written as a docker archive. It
// checks the preloaded images by name and runs the programs they hold.
// Booting it is the cluster tests' job.
func TestBuildNodeReal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Kubernetes and the base image")
	}
	var base []NodeOption
	if p := os.Getenv("KINC_TEST_BASE_ARCHIVE"); p != "" {
		base = append(base, WithBaseImage("docker-archive:"+p))
	} else if os.Geteuid() != 0 {
		t.Skip("the default base image needs root (or set KINC_TEST_BASE_ARCHIVE)")
	} else if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Skip("the default base image needs debootstrap (or set KINC_TEST_BASE_ARCHIVE)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "node.tar")
	start := time.Now()
	img, err := BuildNode(ctx, append(base, WithNodeOutput(Output{Format: DockerArchive, Path: out}), WithNodeLog(testWriter{t}), WithNodeWorkDir(t.TempDir()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node image %s %s built and written in %s: %d MB as docker archive", DefaultImage, digestOf(t, img), time.Since(start).Round(time.Second), fi.Size()>>20)
	if keep := os.Getenv("KINC_TEST_NODE_ARCHIVE"); keep != "" {
		// For boot tests by hand: the image outlives the test there.
		if err := WriteImage(ctx, img, DefaultImage, Output{Format: DockerArchive, Path: keep}); err != nil {
			t.Error(err)
		}
	}
	if img.Version != DefaultKubernetesVersion || strings.Join(img.Images, "\n") != strings.Join(nodeImages, "\n") {
		t.Errorf("version %s, images %v; want %s and ENVIRONMENT.md's table %v", img.Version, img.Images, DefaultKubernetesVersion, nodeImages)
	}

	written, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(written, validate.Fast); err != nil {
		t.Errorf("validating the written image: %v", err)
	}
	layers, err := written.Layers()
	if err != nil {
		t.Fatal(err)
	}
	kubeList, _ := layerFiles(t, layers[len(layers)-2])
	for _, want := range []string{"usr/bin/kubeadm 755", "usr/bin/kubelet 755", "usr/bin/kubectl 755", "usr/bin/crictl 755", "kind/version 644"} {
		if !hasString(kubeList, want) {
			t.Errorf("Kubernetes layer lacks %s: %v", want, kubeList)
		}
	}
	_, imageFiles := layerFiles(t, layers[len(layers)-1])
	importIntoContainerd(t, imageFiles)

	dir := t.TempDir()
	subnetEnv := filepath.Join(dir, "subnet.env")
	os.WriteFile(subnetEnv, []byte("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1500\n"), 0o644)
	for _, ref := range nodeImages {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		pimg, archive := preloadedImage(t, imageFiles, tag)
		if pimg == nil {
			continue
		}
		t.Logf("%s: in an archive of %d MB", ref, len(archive)>>20)
		// Run the program each image holds (the last layer's).
		players, _ := pimg.Layers()
		_, files := layerFiles(t, players[len(players)-1])
		for p, data := range files {
			args := map[string][]string{
				"usr/local/bin/etcd": {"--version"}, "usr/local/bin/etcdctl": {"version"},
				"coredns": {"-version"}, "pause": {"-v"},
				"usr/local/bin/cniconf":  {"-once", "-subnet-file", subnetEnv, "-conf", filepath.Join(dir, "10-kinc.conflist")},
				"usr/local/bin/lphelper": {"-p", filepath.Join(dir, "pvc-1"), "-s", "1024", "-m", "Filesystem", "-a", "create"},
			}[p]
			if args == nil {
				args = []string{"--version"}
			}
			bin := filepath.Join(dir, filepath.Base(p))
			os.WriteFile(bin, data, 0o755)
			got, err := exec.Command(bin, args...).CombinedOutput()
			t.Logf("%s: /%s %v: %s", ref, p, args, strings.TrimSpace(string(got)))
			if err != nil {
				t.Errorf("%s: /%s %v: %v", ref, p, args, err)
			}
			want := strings.TrimPrefix(strings.TrimSuffix(tag.TagStr(), "-0"), "v")
			switch p {
			case "pause":
				want = "pause" // its version is the image's, not the program's
			case "usr/local/bin/cniconf":
				want = "wrote"
			case "usr/local/bin/lphelper":
				want = "" // it says nothing; the directory tells
				if _, err := os.Stat(filepath.Join(dir, "pvc-1")); err != nil {
					t.Errorf("lphelper made no volume directory: %v", err)
				}
			}
			if !strings.Contains(string(got), want) {
				t.Errorf("%s: /%s says %q, not its tag's version", ref, p, got)
			}
		}
	}
}

// importIntoContainerd imports the preloaded archives with ctr, as a node
// does, into a namespace of the test's own, when the host's containerd
// answers; the names it reports must be the references kubeadm asks for.
func importIntoContainerd(t *testing.T, imageFiles map[string][]byte) {
	if _, err := exec.LookPath("ctr"); err != nil {
		t.Log("no ctr: preloaded images not imported")
		return
	}
	if err := exec.Command("ctr", "version").Run(); err != nil {
		t.Log("containerd does not answer: preloaded images not imported")
		return
	}
	ns := fmt.Sprintf("kinc-nodeimage-test-%d", os.Getpid())
	ctr := func(args ...string) (string, error) {
		out, err := exec.Command("ctr", append([]string{"-n", ns}, args...)...).CombinedOutput()
		return string(out), err
	}
	dir := t.TempDir()
	var names []string
	for p, data := range imageFiles {
		if !strings.HasPrefix(p, "kind/images/") {
			continue
		}
		f := filepath.Join(dir, filepath.Base(p))
		os.WriteFile(f, data, 0o644)
		if out, err := ctr("images", "import", "--all-platforms", f); err != nil {
			t.Errorf("ctr images import %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
	out, err := ctr("images", "list", "-q")
	if err != nil {
		t.Fatalf("ctr images list: %v\n%s", err, out)
	}
	names = strings.Fields(out)
	// Images first (synchronously, so their content is gone too): a
	// namespace that holds anything cannot be removed.
	t.Cleanup(func() {
		for _, n := range names {
			ctr("images", "rm", "--sync", n)
		}
		if out, err := ctr("namespaces", "rm", ns); err != nil {
			t.Errorf("removing containerd namespace %s: %v\n%s", ns, err, out)
		}
	})
	want := map[string]bool{}
	for _, ref := range nodeImages {
		want[ref] = true
	}
	for _, n := range names {
		if !want[n] {
			t.Errorf("containerd knows %s, which no reference names", n)
		}
		delete(want, n)
	}
	for n := range want {
		t.Errorf("containerd lacks %s after importing /kind/images", n)
	}
	t.Logf("containerd imported %d images: %v", len(names), names)
}

// preloadedImage finds the archive under /kind/images that holds tag and
// reads the image from it.
func preloadedImage(t *testing.T, imageFiles map[string][]byte, tag name.Tag) (v1.Image, []byte) {
	t.Helper()
	for p, archive := range imageFiles {
		if !strings.HasPrefix(p, "kind/images/") {
			continue
		}
		opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(archive)), nil }
		m, err := tarball.LoadManifest(opener)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		for _, d := range m {
			if hasString(d.RepoTags, tag.String()) {
				img, err := tarball.Image(opener, &tag)
				if err != nil {
					t.Fatalf("%s in %s: %v", tag, p, err)
				}
				return img, archive
			}
		}
	}
	t.Errorf("no archive under /kind/images holds %s", tag)
	return nil, nil
}

func onBaseRepo(tag name.Tag) bool {
	r := filepath.Base(tag.RepositoryStr())
	return r == "kube-proxy" || r == "flannel"
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
