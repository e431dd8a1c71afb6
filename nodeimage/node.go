package nodeimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kinc-dev/kinc/nodeimage/gobuild"
)

const (
	// DefaultKubernetesVersion is the Kubernetes a node image gets unless
	// told otherwise; kinc's tests run against it.
	DefaultKubernetesVersion = "v1.34.4"
	// DefaultImage is the node image clusters use unless told otherwise.
	DefaultImage = "kinc/node:" + DefaultKubernetesVersion
	// KubeSourceProxy builds Kubernetes from source through the Go module
	// proxy (the default kube source).
	KubeSourceProxy = "proxy"
)

// kubeBinaries go to /usr/bin of the node; the others of kubeComponents
// only into the control-plane images.
var (
	kubeBinaries   = []string{"kubeadm", "kubelet", "kubectl"}
	kubeComponents = gobuild.Components
	// addonBinaries are taken from a directory source when it has them
	// and built through the proxy otherwise.
	addonBinaries = []string{"etcd", "etcdctl", "coredns", "pause", "crictl", "flanneld", "cniconf", "local-path-provisioner", "lphelper"}
)

// CrictlVersion is the crictl a node image gets when its base has none
// (Debian bookworm has no package; the proxy serves v1.37.0, not v1.36.0).
const CrictlVersion = "v1.37.0"

// NodeOption configures BuildNode.
type NodeOption func(*nodeOptions) error

type nodeOptions struct {
	version     string
	versionSet  bool
	kubeSource  string
	base        string
	extra       []string
	arch        string
	workDir     string
	imageName   string
	defaultCNI  bool
	storage     bool
	output      *Output
	baseOpts    []BaseOption
	log         io.Writer
	progress    Progress
	gobuildOpts []gobuild.Option
	remoteOpts  []remote.Option
	httpClient  *http.Client
}

// WithKubernetesVersion sets the Kubernetes version (vX.Y.Z). With a
// directory or tarball source it defaults to what their kubeadm reports.
func WithKubernetesVersion(v string) NodeOption {
	return func(o *nodeOptions) error {
		if v == "" {
			return nil
		}
		o.version, o.versionSet = v, true
		return nil
	}
}

// WithKubeSource says where Kubernetes comes from: "proxy" (built from
// source through the Go module proxy, the default), a directory of
// binaries (kubeadm, kubelet, kubectl, kube-apiserver,
// kube-controller-manager, kube-scheduler, kube-proxy; and optionally
// etcd, etcdctl, coredns, pause, else built), or a
// kubernetes-server-linux-ARCH.tar.gz by path or http(s) URL.
func WithKubeSource(src string) NodeOption {
	return func(o *nodeOptions) error {
		if src != "" {
			o.kubeSource = src
		}
		return nil
	}
}

// WithBaseImage sets the base image: a registry reference, or
// oci-archive:PATH, docker-archive:PATH or oci:DIR.
func WithBaseImage(ref string) NodeOption {
	return func(o *nodeOptions) error {
		o.base = ref
		return nil
	}
}

// WithExtraImages preloads more images: registry references (pulled) or
// image archives (copied as they are). An extra image with the reference
// of one kubeadm needs is used instead of building that one.
func WithExtraImages(refs ...string) NodeOption {
	return func(o *nodeOptions) error {
		o.extra = append(o.extra, refs...)
		return nil
	}
}

// WithNodeImageName names the image (default DefaultImage).
func WithNodeImageName(ref string) NodeOption {
	return func(o *nodeOptions) error {
		if _, err := name.NewTag(ref); err != nil {
			return fmt.Errorf("parsing image name %q: %w", ref, err)
		}
		o.imageName = ref
		return nil
	}
}

// WithDefaultCNI says whether the image carries kinc's default CNI
// (flannel: its image and /kind/manifests/default-cni.yaml); default yes.
func WithDefaultCNI(on bool) NodeOption {
	return func(o *nodeOptions) error {
		o.defaultCNI = on
		return nil
	}
}

// WithDefaultStorage says whether the image carries kinc's default storage
// class (local-path-provisioner: its image and
// /kind/manifests/default-storage.yaml); default yes.
func WithDefaultStorage(on bool) NodeOption {
	return func(o *nodeOptions) error {
		o.storage = on
		return nil
	}
}

// WithNodeOutput writes the image there once built (see ParseOutput).
func WithNodeOutput(out Output) NodeOption {
	return func(o *nodeOptions) error {
		o.output = &out
		return nil
	}
}

// WithDefaultBase passes options to the build of the default base image,
// made (or taken from the cache) when no base image is given.
func WithDefaultBase(opts ...BaseOption) NodeOption {
	return func(o *nodeOptions) error {
		o.baseOpts = append(o.baseOpts, opts...)
		return nil
	}
}

// WithNodeArch sets the architecture of the image (default the host's).
func WithNodeArch(arch string) NodeOption {
	return func(o *nodeOptions) error {
		o.arch = arch
		return nil
	}
}

// WithNodeWorkDir sets where the build keeps its files (layers, image
// archives) until the image is closed; default the system temp dir.
func WithNodeWorkDir(dir string) NodeOption {
	return func(o *nodeOptions) error {
		o.workDir = dir
		return nil
	}
}

// WithNodeProgress reports each step of the build (the CLI prints them).
func WithNodeProgress(p Progress) NodeOption {
	return func(o *nodeOptions) error { o.progress = p; return nil }
}

// WithNodeLog makes the build say what it does.
func WithNodeLog(w io.Writer) NodeOption {
	return func(o *nodeOptions) error {
		o.log = w
		return nil
	}
}

// WithGoBuild passes options to every build through the Go module proxy
// (its cache directory, say).
func WithGoBuild(opts ...gobuild.Option) NodeOption {
	return func(o *nodeOptions) error {
		o.gobuildOpts = append(o.gobuildOpts, opts...)
		return nil
	}
}

// WithRemote passes options to every registry pull (auth, transport).
func WithRemote(opts ...remote.Option) NodeOption {
	return func(o *nodeOptions) error {
		o.remoteOpts = append(o.remoteOpts, opts...)
		return nil
	}
}

// NodeImage is a built node image. Its new layers and the archives it
// pulled live in files until Close, so write it out before closing.
type NodeImage struct {
	v1.Image
	// Version is the Kubernetes version it holds.
	Version string
	// Images are the references preloaded under /kind/images.
	Images []string
	dir    string
}

// Close removes the files the image is made of.
func (n *NodeImage) Close() error { return os.RemoveAll(n.dir) }

// nodeBuild is the state of one BuildNode.
type nodeBuild struct {
	*nodeOptions
	dir  string
	base v1.Image
	bins map[string]string // binary name -> path
	// baseFile holds files of the base image (see baseFiles).
	baseFile map[string][]byte
	// staticBase is the layer every distroless-like image shares.
	staticBase v1.Layer
	netTools   v1.Layer // netToolsLayer, made once
}

// BuildNode builds a node image: the base image's layers unchanged, then
// one layer with kubeadm, kubelet, kubectl (crictl too when the base has
// none, and containerd's config when the base's names another pause
// image) and /kind/version, then one with the images kubeadm needs (as
// docker archives under /kind/images) and /kind/manifests. The same inputs
// give the same digest. Without a base image, the default one is built or
// taken from the cache (CachedBaseArchive). With WithNodeOutput the image
// is written there; either way the caller closes it.
func BuildNode(ctx context.Context, opts ...NodeOption) (img *NodeImage, err error) {
	o := &nodeOptions{
		version:    DefaultKubernetesVersion,
		kubeSource: KubeSourceProxy,
		arch:       goruntime.GOARCH,
		imageName:  DefaultImage,
		defaultCNI: true,
		storage:    true,
		log:        io.Discard,
		httpClient: http.DefaultClient,
		progress:   noProgress{},
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.base == "" {
		fmt.Fprintf(o.log, "Building the default base image (or taking it from the cache) ...\n")
		archive, err := CachedBaseArchive(ctx, o.baseOpts...)
		if err != nil {
			return nil, fmt.Errorf("making the default base image (or give one): %w", err)
		}
		o.base = "docker-archive:" + archive
	}
	dir, err := os.MkdirTemp(o.workDir, "kinc-node-")
	if err != nil {
		return nil, fmt.Errorf("creating work directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	b := &nodeBuild{nodeOptions: o, dir: dir}

	// The base first: a bad reference should fail before minutes of build.
	if b.base, err = b.readImage(ctx, o.base, "base"); err != nil {
		return nil, fmt.Errorf("reading base image %q: %w", o.base, err)
	}
	if b.baseFile, err = b.baseFiles(); err != nil {
		return nil, err
	}
	var crictl string
	err = runStep(o.progress, fmt.Sprintf("Building Kubernetes %s (%s)", o.version, o.kubeSource), func() error {
		if err := b.kubernetes(ctx); err != nil {
			return err
		}
		if !b.baseHasCrictl() {
			crictl, err = b.crictl(ctx)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	var refs, archives, preloaded []string
	err = runStep(o.progress, "Building the preloaded images", func() error {
		if refs, err = b.imageList(ctx); err != nil {
			return err
		}
		if o.defaultCNI {
			refs = append(refs, FlannelImage)
		}
		if o.storage {
			refs = append(refs, LocalPathImage)
		}
		archives, preloaded, err = b.preload(ctx, refs)
		return err
	})
	if err != nil {
		return nil, err
	}

	kubeEntries := []Entry{{Path: "/kind/version", Data: []byte(b.version + "\n")}}
	for _, bin := range kubeBinaries {
		kubeEntries = append(kubeEntries, Entry{Path: "/usr/bin/" + bin, Mode: 0o755, Source: b.bins[bin]})
	}
	if crictl != "" {
		kubeEntries = append(kubeEntries, Entry{Path: "/usr/bin/crictl", Mode: 0o755, Source: crictl})
	}
	for _, ref := range refs {
		if tag, err := name.NewTag(ref); err == nil && path.Base(tag.RepositoryStr()) == "pause" {
			if conf := containerdConfigFor(b.baseFile[containerdConfigFile], tag.Name()); conf != nil {
				kubeEntries = append(kubeEntries, Entry{Path: "/" + containerdConfigFile, Data: conf})
			}
		}
	}
	imageEntries := []Entry{{Path: "/kind/manifests", Mode: fs.ModeDir | 0o755}}
	if o.defaultCNI {
		cni := strings.ReplaceAll(defaultCNI, "@FLANNEL_IMAGE@", FlannelImage)
		imageEntries = append(imageEntries, Entry{Path: "/kind/manifests/default-cni.yaml", Data: []byte(cni)})
	}
	if o.storage {
		storage := strings.ReplaceAll(defaultStorage, "@LOCAL_PATH_IMAGE@", LocalPathImage)
		imageEntries = append(imageEntries, Entry{Path: "/kind/manifests/default-storage.yaml", Data: []byte(storage)})
	}
	for _, a := range archives {
		imageEntries = append(imageEntries, Entry{Path: "/kind/images/" + filepath.Base(a), Source: a})
	}
	var kubeLayer, imagesLayer v1.Layer
	err = runStep(o.progress, "Writing the node image layers", func() error {
		if kubeLayer, err = LayerFromEntries(ctx, kubeEntries, WithLayerDir(dir)); err != nil {
			return fmt.Errorf("making the Kubernetes layer: %w", err)
		}
		if imagesLayer, err = LayerFromEntries(ctx, imageEntries, WithLayerDir(dir)); err != nil {
			return fmt.Errorf("making the images layer: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	node, err := appendLayers(b.base, []v1.Layer{kubeLayer, imagesLayer}, []string{
		"kinc build node-image: Kubernetes " + b.version,
		"kinc build node-image: preloaded images",
	})
	if err != nil {
		return nil, err
	}
	built := &NodeImage{Image: node, Version: b.version, Images: preloaded, dir: dir}
	if o.output != nil {
		fmt.Fprintf(o.log, "Writing %s to %s ...\n", o.imageName, o.output)
		if err := WriteImage(ctx, node, o.imageName, *o.output); err != nil {
			return nil, err
		}
	}
	return built, nil
}

func (b *nodeBuild) baseHasCrictl() bool {
	for _, p := range crictlPaths {
		if _, ok := b.baseFile[p]; ok {
			return true
		}
	}
	return false
}

// crictl comes from the kube source directory, else from the proxy.
func (b *nodeBuild) crictl(ctx context.Context) (string, error) {
	if p, ok := b.bins["crictl"]; ok {
		return p, nil
	}
	bins, err := gobuild.Build(ctx, gobuild.Crictl(CrictlVersion), append([]gobuild.Option{gobuild.WithArch(b.arch), gobuild.WithLog(b.log)}, b.gobuildOpts...)...)
	if err != nil {
		return "", err
	}
	return bins["crictl"], nil
}

// appendLayers adds layers with fixed history times and gives them the
// media type family of the base, so that an OCI base stays OCI.
func appendLayers(base v1.Image, layers []v1.Layer, createdBy []string) (v1.Image, error) {
	mt, err := base.MediaType()
	if err != nil {
		return nil, fmt.Errorf("reading base image media type: %w", err)
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		if mt == types.OCIManifestSchema1 {
			l = ociLayer{l}
		}
		adds[i] = mutate.Addendum{Layer: l, History: v1.History{CreatedBy: createdBy[i], Created: v1.Time{Time: Epoch}}}
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, fmt.Errorf("adding layers: %w", err)
	}
	return mutate.CreatedAt(img, v1.Time{Time: Epoch})
}

type ociLayer struct{ v1.Layer }

func (ociLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// readImage reads an image named as --base-image and --image take it.
func (b *nodeBuild) readImage(ctx context.Context, ref, what string) (v1.Image, error) {
	var (
		img v1.Image
		err error
	)
	switch {
	case strings.HasPrefix(ref, "docker-archive:"):
		img, err = tarball.ImageFromPath(strings.TrimPrefix(ref, "docker-archive:"), nil)
	case strings.HasPrefix(ref, "oci-archive:"):
		dir := filepath.Join(b.dir, what+"-oci")
		if err := untarLayout(strings.TrimPrefix(ref, "oci-archive:"), dir); err != nil {
			return nil, err
		}
		img, err = b.imageFromLayout(dir)
	case strings.HasPrefix(ref, "oci:"):
		img, err = b.imageFromLayout(strings.TrimPrefix(ref, "oci:"))
	default:
		var r name.Reference
		if r, err = name.ParseReference(ref); err != nil {
			return nil, err
		}
		opts := append([]remote.Option{remote.WithContext(ctx), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: b.arch})}, b.remoteOpts...)
		img, err = remote.Image(r, opts...)
	}
	if err != nil {
		return nil, err
	}
	// Reading the config makes lazy sources fail here rather than midway.
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if cfg.Architecture != "" && cfg.Architecture != b.arch {
		return nil, fmt.Errorf("image is for %s, not %s", cfg.Architecture, b.arch)
	}
	return img, nil
}

// imageFromLayout picks the image for our platform from an OCI layout.
func (b *nodeBuild) imageFromLayout(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		if d.Platform == nil || (d.Platform.OS == "linux" && d.Platform.Architecture == b.arch) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("OCI layout %s holds no linux/%s image", dir, b.arch)
	case 1:
		return idx.Image(found[0].Digest)
	}
	return nil, fmt.Errorf("OCI layout %s holds %d images: say which with a single-image layout", dir, len(found))
}

// untar extracts a tar (an OCI archive) of regular files and directories.
func untarLayout(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", archive, err)
		}
		rel := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if rel == "." {
			continue
		}
		if !fs.ValidPath(rel) {
			return fmt.Errorf("reading %s: unsafe path %q", archive, hdr.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := writeFileFrom(p, tr, 0o644); err != nil {
				return err
			}
		}
	}
}

func writeFileFrom(p string, r io.Reader, mode fs.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// kubernetes finds the Kubernetes binaries and the version they are.
func (b *nodeBuild) kubernetes(ctx context.Context) error {
	src := b.kubeSource
	switch {
	case src == KubeSourceProxy:
		fmt.Fprintf(b.log, "Building Kubernetes %s through the Go module proxy ...\n", b.version)
		bins, err := gobuild.Kubernetes(ctx, b.version, kubeComponents, append([]gobuild.Option{gobuild.WithArch(b.arch), gobuild.WithLog(b.log)}, b.gobuildOpts...)...)
		if err != nil {
			return err
		}
		b.bins = bins
		return nil
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
		local := filepath.Join(b.dir, "kubernetes-server.tar.gz")
		fmt.Fprintf(b.log, "Downloading %s ...\n", src)
		if err := b.download(ctx, src, local); err != nil {
			return err
		}
		if err := b.fromServerTarball(local, src); err != nil {
			return err
		}
	default:
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("reading Kubernetes source %q (want %q, a directory of binaries, or a kubernetes-server tarball path or URL): %w", src, KubeSourceProxy, err)
		}
		if fi.IsDir() {
			if err := b.fromDirectory(src); err != nil {
				return err
			}
		} else if err := b.fromServerTarball(src, src); err != nil {
			return err
		}
	}
	return b.binaryVersion(ctx)
}

func (b *nodeBuild) fromDirectory(dir string) error {
	b.bins = map[string]string{}
	var missing []string
	for _, bin := range append(append([]string(nil), kubeComponents...), addonBinaries...) {
		p := filepath.Join(dir, bin)
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.Mode().IsRegular():
			b.bins[bin] = p
		case slices.Contains(addonBinaries, bin):
			// built through the proxy when needed
		default:
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("reading Kubernetes binaries from %s: missing %s", dir, strings.Join(missing, ", "))
	}
	return nil
}

// fromServerTarball extracts the binaries of a kubernetes-server tarball
// (kubernetes/server/bin/NAME).
func (b *nodeBuild) fromServerTarball(file, shown string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("reading Kubernetes server tarball: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("reading Kubernetes server tarball %s: %w", shown, err)
	}
	binDir := filepath.Join(b.dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	b.bins = map[string]string{}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading Kubernetes server tarball %s: %w", shown, err)
		}
		rel := strings.TrimPrefix(hdr.Name, "./")
		bin := path.Base(rel)
		if hdr.Typeflag != tar.TypeReg || path.Dir(rel) != "kubernetes/server/bin" || !slices.Contains(kubeComponents, bin) {
			continue
		}
		p := filepath.Join(binDir, bin)
		if err := writeFileFrom(p, tr, 0o755); err != nil {
			return fmt.Errorf("extracting %s: %w", rel, err)
		}
		b.bins[bin] = p
	}
	var missing []string
	for _, c := range kubeComponents {
		if _, ok := b.bins[c]; !ok {
			missing = append(missing, "kubernetes/server/bin/"+c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("reading Kubernetes server tarball %s: missing %s", shown, strings.Join(missing, ", "))
	}
	return nil
}

func (b *nodeBuild) download(ctx context.Context, url, dst string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	resp, err := b.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: %s", url, resp.Status)
	}
	if err := writeFileFrom(dst, resp.Body, 0o644); err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	return nil
}

// binaryVersion settles the version of prebuilt binaries: what kubeadm
// says, which must match the version asked for, if any.
func (b *nodeBuild) binaryVersion(ctx context.Context) error {
	out, err := b.runKubeadm(ctx, "version", "-o", "short")
	got := strings.TrimSpace(string(out))
	if err != nil || !kubeVersionRE.MatchString(got) {
		if b.versionSet {
			return nil // cannot run (another architecture, say): trust the caller
		}
		return fmt.Errorf("finding the Kubernetes version of %s (set it explicitly): kubeadm version: %v %s", b.kubeSource, err, got)
	}
	if b.versionSet && got != b.version {
		return fmt.Errorf("Kubernetes source %s holds %s, not %s", b.kubeSource, got, b.version)
	}
	b.version = got
	return nil
}

func (b *nodeBuild) runKubeadm(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.bins["kubeadm"], args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
