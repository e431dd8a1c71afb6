package cli

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/urfave/cli/v2"

	"github.com/kinc-dev/kinc/nodeimage"
)

var (
	outputFlag = &cli.StringSliceFlag{Name: "output", Usage: "write the image to `DEST`: oci-archive:FILE, docker-archive:FILE or oci:DIR (repeatable)"}
	loadFlag   = &cli.BoolFlag{Name: "load", Usage: "load the image into the selected runtime (--runtime)"}
)

func buildCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "build",
		Usage: "build node images, with no daemon",
		Subcommands: []*cli.Command{
			{
				Name:  "base-image",
				Usage: "assemble the Debian base of node images with debootstrap (needs root)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "image", Value: nodeimage.DefaultBaseImage, Usage: "image `NAME`"},
					&cli.StringFlag{Name: "mirror", Usage: "Debian `URL` (default: the host's apt mirror)"},
					&cli.BoolFlag{Name: "rebuild", Usage: "ignore the cache"},
					outputFlag, loadFlag,
				},
				Action: func(c *cli.Context) error {
					outs, err := parseOutputs(c)
					if err != nil {
						return err
					}
					opts := []nodeimage.BaseOption{
						nodeimage.WithImageName(c.String("image")),
						nodeimage.WithProgress(newStatus(e)),
						nodeimage.WithLogger(logger(e)),
					}
					if m := c.String("mirror"); m != "" {
						opts = append(opts, nodeimage.WithMirror(m))
					}
					if c.Bool("rebuild") {
						opts = append(opts, nodeimage.WithRebuild())
					}
					img, err := nodeimage.BuildBase(c.Context, opts...)
					if err != nil {
						return err
					}
					return deliver(e, c, img, c.String("image"), outs)
				},
			},
			{
				Name:  "node-image",
				Usage: "build a node image: the base, Kubernetes and every image a cluster needs, preloaded",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "kubernetes-version", Usage: "Kubernetes `vX.Y.Z` (default " + nodeimage.DefaultKubernetesVersion + ", or what --kube-source holds)"},
					&cli.StringFlag{Name: "kube-source", Value: nodeimage.KubeSourceProxy, Usage: "where Kubernetes comes from: proxy (build through the Go module proxy), a `DIR` of binaries, or a kubernetes-server-linux-amd64.tar.gz path or URL"},
					&cli.StringFlag{Name: "base-image", Usage: "base image `REF`: a registry reference, oci-archive:PATH, docker-archive:PATH or oci:DIR (default: build the Debian base)"},
					&cli.StringFlag{Name: "image", Usage: "image `NAME` (default kinc/node:VERSION)"},
					&cli.StringSliceFlag{Name: "extra-image", Usage: "preload another image: a registry `REF` or an archive (repeatable)"},
					outputFlag, loadFlag,
				},
				Action: func(c *cli.Context) error {
					outs, err := parseOutputs(c)
					if err != nil {
						return err
					}
					opts := []nodeimage.NodeOption{
						nodeimage.WithKubeSource(c.String("kube-source")),
						nodeimage.WithNodeProgress(newStatus(e)),
						nodeimage.WithExtraImages(c.StringSlice("extra-image")...),
						nodeimage.WithDefaultBase(nodeimage.WithProgress(newStatus(e)), nodeimage.WithLogger(logger(e))),
					}
					if e.verbosity > 0 {
						opts = append(opts, nodeimage.WithNodeLog(e.stderr))
					}
					if b := c.String("base-image"); b != "" {
						opts = append(opts, nodeimage.WithBaseImage(b))
					}
					// A directory or tarball says its own version; the flag
					// is only passed when given.
					if v := c.String("kubernetes-version"); v != "" {
						opts = append(opts, nodeimage.WithKubernetesVersion(v))
					}
					if name := c.String("image"); name != "" {
						opts = append(opts, nodeimage.WithNodeImageName(name))
					}
					img, err := nodeimage.BuildNode(c.Context, opts...)
					if err != nil {
						return err
					}
					defer img.Close()
					name := c.String("image")
					if name == "" {
						name = "kinc/node:" + img.Version
					}
					return deliver(e, c, img, name, outs)
				},
			},
		},
	}
}

func parseOutputs(c *cli.Context) ([]nodeimage.Output, error) {
	var outs []nodeimage.Output
	for _, s := range c.StringSlice("output") {
		o, err := nodeimage.ParseOutput(s)
		if err != nil {
			return nil, cli.Exit(err.Error(), 2)
		}
		outs = append(outs, o)
	}
	if len(outs) == 0 && !c.Bool("load") {
		return nil, cli.Exit("say where the image goes: --load (into the runtime), --output oci-archive:FILE, docker-archive:FILE or oci:DIR", 2)
	}
	return outs, nil
}

// deliver writes the built image to each output and loads it when asked,
// then prints its name and size.
func deliver(e *env, c *cli.Context, img v1.Image, name string, outs []nodeimage.Output) error {
	st := newStatus(e)
	for _, o := range outs {
		step := fmt.Sprintf("Writing %s", o)
		st.Start(step)
		err := nodeimage.WriteImage(c.Context, img, name, o)
		st.End(step, err)
		if err != nil {
			return err
		}
	}
	if c.Bool("load") {
		rt, err := openRuntime(c.Context, e)
		if err != nil {
			return err
		}
		defer rt.Close()
		step := fmt.Sprintf("Loading %s into the runtime", name)
		st.Start(step)
		_, err = nodeimage.Load(c.Context, rt, img, name)
		st.End(step, err)
		if err != nil {
			return err
		}
	}
	if !e.quiet {
		size, err := compressedSize(img)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Image %s built: %d MB in %d layers (compressed)\n", name, size>>20, len(mustLayers(img)))
	}
	return nil
}

// compressedSize adds up the image's layer blobs.
func compressedSize(img v1.Image) (int64, error) {
	var total int64
	for _, l := range mustLayers(img) {
		n, err := l.Size()
		if err != nil {
			return 0, fmt.Errorf("sizing layer: %w", err)
		}
		total += n
	}
	return total, nil
}

func mustLayers(img v1.Image) []v1.Layer {
	ls, _ := img.Layers()
	return ls
}
