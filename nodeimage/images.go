package nodeimage

import (
	"archive/tar"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kinc-dev/kinc/nodeimage/gobuild"
)

// pauseSource is the pause program, built for the pause image.
//
//go:embed pause/main.go
var pauseSource string

// cniconfSource writes a node's CNI config for flanneld's subnet; it goes
// into the flannel image.
//
//go:embed cniconf/main.go
var cniconfSource string

// defaultCNI is /kind/manifests/default-cni.yaml once @FLANNEL_IMAGE@ is
// set; the template fields ({{ .PodSubnet }} and others, listed in the
// file) are left for the cluster code, as in kind's.
//
//go:embed manifests/default-cni.yaml
var defaultCNI string

// defaultStorage is /kind/manifests/default-storage.yaml once
// @LOCAL_PATH_IMAGE@ is set.
//
//go:embed manifests/default-storage.yaml
var defaultStorage string

// lphelperSource makes and removes local-path volumes' directories; it
// goes into the local-path image.
//
//go:embed lphelper/main.go
var lphelperSource string

const (
	// LocalPathVersion is the local-path-provisioner of the default
	// storage class.
	LocalPathVersion = "v0.0.30"
	// LocalPathImage is its image, built by kinc, helper included.
	LocalPathImage = "docker.io/kinc/local-path-provisioner:" + LocalPathVersion
	// FlannelVersion is the flanneld of the default CNI.
	FlannelVersion = "v0.28.10"
	// FlannelImage is the image of the default CNI, built by kinc (upstream's
	// needs flannel's CNI plugin, which the proxy does not serve).
	FlannelImage = "docker.io/kinc/flannel:" + FlannelVersion
)

var kubeVersionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// knownImages is what kubeadm pins (cmd/kubeadm/app/constants), used only
// when the kubeadm at hand cannot run here (built for another
// architecture): coredns, pause and etcd tags.
var knownImages = map[string][3]string{
	"v1.34.4": {"v1.12.1", "3.10.1", "3.6.5-0"},
	"v1.35.4": {"v1.13.1", "3.10.1", "3.6.6-0"},
	"v1.36.3": {"v1.14.2", "3.10.2", "3.6.8-0"},
	"v1.37.2": {"v1.14.6", "3.10.2", "3.7.0-0"},
}

// binPath is where upstream images keep their programs, and PATH says so;
// kube-proxy's also needs /usr/sbin for iptables.
const binPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// imageList is what `kubeadm config images list` prints for the version.
func (b *nodeBuild) imageList(ctx context.Context) ([]string, error) {
	out, err := b.runKubeadm(ctx, "config", "images", "list", "--kubernetes-version", b.version)
	if err != nil {
		pinned, ok := knownImages[b.version]
		if !ok {
			return nil, fmt.Errorf("listing the images of Kubernetes %s: kubeadm config images list: %w", b.version, err)
		}
		const r = "registry.k8s.io/"
		return []string{
			r + "kube-apiserver:" + b.version, r + "kube-controller-manager:" + b.version,
			r + "kube-scheduler:" + b.version, r + "kube-proxy:" + b.version,
			r + "coredns/coredns:" + pinned[0], r + "pause:" + pinned[1], r + "etcd:" + pinned[2],
		}, nil
	}
	var refs []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if _, err := name.NewTag(line, name.StrictValidation); err != nil {
			return nil, fmt.Errorf("listing the images of Kubernetes %s: kubeadm printed %q: %w", b.version, line, err)
		}
		refs = append(refs, line)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("listing the images of Kubernetes %s: kubeadm printed none", b.version)
	}
	return refs, nil
}

// preload writes every image the node holds as an archive in the work
// dir: the extra images as given, then each image kubeadm needs that no
// extra image provides, built from binaries. It returns the archives and
// the references they hold.
func (b *nodeBuild) preload(ctx context.Context, kubeadmRefs []string) (archives, refs []string, err error) {
	dir := filepath.Join(b.dir, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	provided := map[string]bool{} // by normalized name
	for _, extra := range b.extra {
		archive, tags, err := b.extraImage(ctx, dir, extra)
		if err != nil {
			return nil, nil, fmt.Errorf("adding image %q: %w", extra, err)
		}
		archives = append(archives, archive)
		for _, t := range tags {
			provided[t.Name()] = true
			refs = append(refs, t.String())
		}
	}
	// Images made on the base share one archive, so that the base's
	// layers are in the node image once, not once per image.
	var onBase []taggedImage
	for _, ref := range kubeadmRefs {
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			return nil, nil, err
		}
		if provided[tag.Name()] {
			continue
		}
		fmt.Fprintf(b.log, "Making image %s ...\n", ref)
		img, base, err := b.kubeadmImage(ctx, tag)
		if err != nil {
			return nil, nil, fmt.Errorf("making image %s: %w", ref, err)
		}
		refs = append(refs, ref)
		if base {
			onBase = append(onBase, taggedImage{tag, img})
			continue
		}
		p := filepath.Join(dir, archiveName(tag))
		if err := tarball.WriteToFile(p, tag, img); err != nil {
			return nil, nil, fmt.Errorf("writing image %s: %w", ref, err)
		}
		archives = append(archives, p)
	}
	if len(onBase) > 0 {
		names := make([]string, len(onBase))
		for i, ti := range onBase {
			names[i] = strings.TrimSuffix(archiveName(ti.tag), ".tar")
		}
		p := filepath.Join(dir, strings.Join(names, "+")+".tar")
		if err := writeDockerArchive(p, onBase); err != nil {
			return nil, nil, fmt.Errorf("writing images %s: %w", strings.Join(names, ", "), err)
		}
		archives = append(archives, p)
	}
	sort.Strings(refs)
	return archives, refs, nil
}

// archiveName names an image's archive under /kind/images after its
// reference as written (docker.io, not index.docker.io).
func archiveName(ref name.Reference) string {
	return strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(ref.String()) + ".tar"
}

// extraImage adds an archive as it is (what it holds is read from a
// docker archive's manifest, when it is one) or pulls a reference.
func (b *nodeBuild) extraImage(ctx context.Context, dir, extra string) (string, []name.Tag, error) {
	if fi, err := os.Stat(extra); err == nil && fi.Mode().IsRegular() {
		dst := filepath.Join(dir, filepath.Base(extra))
		if !strings.HasSuffix(dst, ".tar") {
			dst += ".tar"
		}
		if _, err := os.Stat(dst); err == nil {
			return "", nil, fmt.Errorf("two images named %s", filepath.Base(dst))
		}
		src, err := os.Open(extra)
		if err != nil {
			return "", nil, err
		}
		defer src.Close()
		if err := writeFileFrom(dst, src, 0o644); err != nil {
			return "", nil, err
		}
		var tags []name.Tag
		if m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(extra) }); err == nil {
			for _, d := range m {
				for _, t := range d.RepoTags {
					if tag, err := name.NewTag(t); err == nil {
						tags = append(tags, tag)
					}
				}
			}
		}
		return dst, tags, nil
	}
	ref, err := name.ParseReference(extra)
	if err != nil {
		return "", nil, fmt.Errorf("neither a file nor a reference: %w", err)
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		// A digest names no tag for the runtime to know it by.
		return "", nil, fmt.Errorf("a reference by digest cannot be preloaded: give a tag")
	}
	img, err := b.readImage(ctx, extra, "image")
	if err != nil {
		return "", nil, err
	}
	p := filepath.Join(dir, archiveName(tag))
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		return "", nil, err
	}
	return p, []name.Tag{tag}, nil
}

// kubeadmImage builds one of the images kubeadm needs, from binaries, the
// way upstream lays it out: programs in /usr/local/bin (coredns and pause
// at /), the entrypoints and users of upstream images.
func (b *nodeBuild) kubeadmImage(ctx context.Context, tag name.Tag) (img v1.Image, onBase bool, err error) {
	switch path.Base(tag.RepositoryStr()) {
	case "kube-proxy", "flannel":
		img, err = b.imageOnBase(ctx, tag)
		return img, true, err
	}
	img, err = b.staticKubeadmImage(ctx, tag)
	return img, false, err
}

// imageOnBase builds the images whose programs need the base's iptables,
// nft and conntrack: kube-proxy, and flanneld, which runs iptables even
// in nftables mode (to clean up).
func (b *nodeBuild) imageOnBase(ctx context.Context, tag name.Tag) (v1.Image, error) {
	if path.Base(tag.RepositoryStr()) == "kube-proxy" {
		return b.onBaseImage(ctx, []Entry{binEntry("/usr/local/bin/kube-proxy", b.bins["kube-proxy"])}, "/usr/local/bin/kube-proxy")
	}
	bins, err := b.addonBinaries(ctx, tag.TagStr(), "flanneld", "cniconf")
	if err != nil {
		return nil, err
	}
	return b.onBaseImage(ctx, []Entry{
		binEntry("/usr/local/bin/flanneld", bins["flanneld"]),
		binEntry("/usr/local/bin/cniconf", bins["cniconf"]),
	}, "/usr/local/bin/flanneld")
}

// staticKubeadmImage builds an image of static programs on passwd, group
// and CA certificates alone.
func (b *nodeBuild) staticKubeadmImage(ctx context.Context, tag name.Tag) (v1.Image, error) {
	repo := path.Base(tag.RepositoryStr())
	switch repo {
	case "kube-apiserver", "kube-controller-manager", "kube-scheduler":
		return b.staticImage(ctx, []Entry{binEntry("/usr/local/bin/"+repo, b.bins[repo])},
			v1.Config{Entrypoint: []string{"/usr/local/bin/" + repo}})
	case "etcd":
		bins, err := b.addonBinaries(ctx, tag.TagStr(), "etcd", "etcdctl")
		if err != nil {
			return nil, err
		}
		return b.staticImage(ctx, []Entry{
			binEntry("/usr/local/bin/etcd", bins["etcd"]),
			binEntry("/usr/local/bin/etcdctl", bins["etcdctl"]),
		}, v1.Config{
			Cmd:          []string{"/usr/local/bin/etcd"},
			ExposedPorts: map[string]struct{}{"2379/tcp": {}, "2380/tcp": {}},
		})
	case "coredns":
		bins, err := b.addonBinaries(ctx, tag.TagStr(), "coredns")
		if err != nil {
			return nil, err
		}
		// Upstream runs as nonroot with a file capability to bind port
		// 53; root, which kubeadm's Deployment confines to
		// NET_BIND_SERVICE anyway, needs no xattr to survive imports.
		return b.staticImage(ctx, []Entry{binEntry("/coredns", bins["coredns"])}, v1.Config{
			Entrypoint:   []string{"/coredns"},
			ExposedPorts: map[string]struct{}{"53/tcp": {}, "53/udp": {}},
		})
	case "local-path-provisioner":
		bins, err := b.addonBinaries(ctx, tag.TagStr(), "local-path-provisioner", "lphelper")
		if err != nil {
			return nil, err
		}
		return b.staticImage(ctx, []Entry{
			binEntry("/usr/local/bin/local-path-provisioner", bins["local-path-provisioner"]),
			binEntry("/usr/local/bin/lphelper", bins["lphelper"]),
		}, v1.Config{Entrypoint: []string{"/usr/local/bin/local-path-provisioner"}})
	case "pause":
		bins, err := b.addonBinaries(ctx, tag.TagStr(), "pause")
		if err != nil {
			return nil, err
		}
		return b.staticImage(ctx, []Entry{binEntry("/pause", bins["pause"])}, v1.Config{
			Entrypoint: []string{"/pause"},
			User:       "65535:65535",
		})
	}
	return nil, fmt.Errorf("kinc cannot build %s: preload it with an extra image", tag.Name())
}

func binEntry(p, source string) Entry {
	return Entry{Path: p, Mode: 0o755, Source: source}
}

// addonBinaries returns the named binaries from the kube source when it
// has them, else builds them through the proxy at the version the image
// tag says.
func (b *nodeBuild) addonBinaries(ctx context.Context, tag string, bins ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, bin := range bins {
		if p, ok := b.bins[bin]; ok {
			out[bin] = p
		}
	}
	if len(out) == len(bins) {
		return out, nil
	}
	var mods []gobuild.Module
	switch bins[0] {
	case "etcd":
		// Image tags carry a revision: 3.6.5-0 is etcd v3.6.5.
		v := "v" + regexp.MustCompile(`-[0-9]+$`).ReplaceAllString(tag, "")
		mods = gobuild.Etcd(v)
	case "coredns":
		mods = []gobuild.Module{gobuild.CoreDNS(tag)}
	case "pause":
		mods = []gobuild.Module{{
			Name:     "pause",
			Files:    map[string]string{"pause/main.go": pauseSource},
			Packages: []string{"./pause"},
			LDFlags:  []string{"-s", "-w"},
		}}
	case "local-path-provisioner":
		mods = []gobuild.Module{gobuild.LocalPathProvisioner(tag), {
			Name:     "lphelper",
			Files:    map[string]string{"lphelper/main.go": lphelperSource},
			Packages: []string{"./lphelper"},
			LDFlags:  []string{"-s", "-w"},
		}}
	case "flanneld":
		mods = []gobuild.Module{gobuild.Flannel(tag), {
			Name:     "cniconf",
			Files:    map[string]string{"cniconf/main.go": cniconfSource},
			Packages: []string{"./cniconf"},
			LDFlags:  []string{"-s", "-w"},
		}}
	}
	opts := append([]gobuild.Option{gobuild.WithArch(b.arch), gobuild.WithLog(b.log)}, b.gobuildOpts...)
	for _, m := range mods {
		built, err := gobuild.Build(ctx, m, opts...)
		if err != nil {
			return nil, err
		}
		for k, v := range built {
			out[k] = v
		}
	}
	return out, nil
}

// staticImage is a distroless-like image: passwd, group, CA certificates,
// /tmp, then the program's layer.
func (b *nodeBuild) staticImage(ctx context.Context, entries []Entry, cfg v1.Config) (v1.Image, error) {
	if b.staticBase == nil {
		certs := b.baseFile[caBundlePath]
		var err error
		files := []Entry{
			{Path: "/etc/passwd", Data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
			{Path: "/etc/group", Data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
			{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
			{Path: "/root", Mode: fs.ModeDir | 0o700},
			{Path: "/home/nonroot", Mode: fs.ModeDir | 0o700, UID: 65532, GID: 65532},
		}
		if len(certs) > 0 {
			files = append(files, Entry{Path: "/etc/ssl/certs/ca-certificates.crt", Data: certs})
		}
		if b.staticBase, err = LayerFromEntries(ctx, files, WithLayerDir(b.dir)); err != nil {
			return nil, err
		}
	}
	bin, err := LayerFromEntries(ctx, entries, WithLayerDir(b.dir))
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: b.staticBase, History: v1.History{CreatedBy: "kinc: passwd, group, CA certificates", Created: v1.Time{Time: Epoch}}},
		mutate.Addendum{Layer: bin, History: v1.History{CreatedBy: "kinc: program", Created: v1.Time{Time: Epoch}}},
	)
	if err != nil {
		return nil, err
	}
	return b.withConfig(img, cfg)
}

// onBaseImage is the base's network tools (iptables, nft, conntrack:
// netToolsLayer), which kube-proxy and flanneld run, plus programs.
func (b *nodeBuild) onBaseImage(ctx context.Context, entries []Entry, entrypoint string) (v1.Image, error) {
	tools, err := b.netToolsLayer(ctx)
	if err != nil {
		return nil, err
	}
	l, err := LayerFromEntries(ctx, entries, WithLayerDir(b.dir))
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: tools, History: v1.History{CreatedBy: "kinc: network tools of the base", Created: v1.Time{Time: Epoch}}},
		mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "kinc: " + path.Base(entrypoint), Created: v1.Time{Time: Epoch}}},
	)
	if err != nil {
		return nil, err
	}
	return b.withConfig(img, v1.Config{Entrypoint: []string{entrypoint}})
}

func (b *nodeBuild) withConfig(img v1.Image, cfg v1.Config) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = b.arch, "linux"
	cf.Created = v1.Time{Time: Epoch}
	cfg.Env = append([]string{"PATH=" + binPath}, cfg.Env...)
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// Files of the base image BuildNode looks at.
const (
	caBundlePath         = "etc/ssl/certs/ca-certificates.crt"
	containerdConfigFile = "etc/containerd/config.toml"
)

// crictlPaths are where a base image may already have crictl.
var crictlPaths = []string{"usr/bin/crictl", "usr/local/bin/crictl"}

// baseFiles reads, in one pass over the base's layers (top first), the
// files the build needs: the CA bundle, containerd's config, and whether
// crictl is there. A whiteout hides a file of the layers below.
func (b *nodeBuild) baseFiles() (map[string][]byte, error) {
	want := map[string]bool{caBundlePath: true, containerdConfigFile: true}
	for _, p := range crictlPaths {
		want[p] = false // presence only
	}
	found := map[string][]byte{}
	seen := map[string]bool{}
	layers, err := b.base.Layers()
	if err != nil {
		return nil, err
	}
	for i := len(layers) - 1; i >= 0 && len(seen) < len(want); i-- {
		if err := scanLayer(layers[i], want, seen, found); err != nil {
			return nil, fmt.Errorf("reading the base image: %w", err)
		}
	}
	return found, nil
}

func scanLayer(l v1.Layer, want map[string]bool, seen map[string]bool, found map[string][]byte) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var here []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		p := cleanPath(hdr.Name)
		if base := path.Base(p); strings.HasPrefix(base, ".wh.") {
			hidden := path.Join(path.Dir(p), strings.TrimPrefix(base, ".wh."))
			if _, ok := want[hidden]; ok && !seen[hidden] {
				here = append(here, hidden)
			}
			continue
		}
		read, ok := want[p]
		if !ok || seen[p] {
			continue
		}
		here = append(here, p)
		if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
			found[p] = []byte{} // there; content elsewhere, not needed
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		found[p] = []byte{}
		if read {
			data, err := io.ReadAll(tr)
			if err != nil {
				return err
			}
			found[p] = data
		}
	}
	// Marked after the whole layer: an entry and its whiteout in one
	// layer are not expected, and order within a layer does not matter.
	for _, p := range here {
		seen[p] = true
	}
	return nil
}

// sandboxImageRE finds the pause image in a containerd 1.x or 2.x config.
var sandboxImageRE = regexp.MustCompile(`(?m)^(\s*(?:sandbox_image|sandbox)\s*=\s*)"[^"]*"`)

// containerdConfigFor returns the base's containerd config with the
// sandbox image set to pause, or nil when it needs no change (or there is
// none to change). Patching keeps whatever else the base configures.
func containerdConfigFor(conf []byte, pause string) []byte {
	if conf == nil || !sandboxImageRE.Match(conf) {
		return nil
	}
	patched := sandboxImageRE.ReplaceAll(conf, []byte(`${1}"`+pause+`"`))
	if bytes.Equal(patched, conf) {
		return nil
	}
	return patched
}

type taggedImage struct {
	tag name.Tag
	img v1.Image
}

// writeDockerArchive writes images into one docker archive, each layer
// once. go-containerregistry's MultiRefWrite would too, but in map order:
// this writes images by reference and blobs in first-use order, so the
// same images give the same bytes.
func writeDockerArchive(p string, images []taggedImage) (err error) {
	sort.Slice(images, func(i, j int) bool { return images[i].tag.String() < images[j].tag.String() })
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	written := map[string]bool{}
	add := func(name string, size int64, open func() (io.ReadCloser, error)) error {
		if written[name] {
			return nil
		}
		written[name] = true
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.CopyN(tw, rc, size)
		return err
	}
	for _, ti := range images {
		cfg, err := ti.img.RawConfigFile()
		if err != nil {
			return err
		}
		cfgName, err := ti.img.ConfigName()
		if err != nil {
			return err
		}
		e := entry{Config: cfgName.Hex + ".json", RepoTags: []string{ti.tag.String()}}
		if err := add(e.Config, int64(len(cfg)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil }); err != nil {
			return err
		}
		layers, err := ti.img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			name := d.Hex + ".tar.gz"
			if err := add(name, size, l.Compressed); err != nil {
				return fmt.Errorf("writing layer %s: %w", d, err)
			}
			e.Layers = append(e.Layers, name)
		}
		manifest = append(manifest, e)
	}
	m, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(m)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(m); err != nil {
		return err
	}
	return tw.Close()
}
