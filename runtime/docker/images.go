package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/client"

	"github.com/kinc-dev/kinc/runtime"
)

// ImageExists tells whether the image is in docker's store.
func (r *Runtime) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := r.c.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if err = r.mapErr(err, fmt.Sprintf("looking up image %q", ref)); errors.Is(err, runtime.ErrNotFound) {
		return false, nil
	}
	return false, err
}

// LoadImage loads a docker-archive or an oci-archive (given the
// manifest.json older docker needs on the way) and returns the tags it
// named, or the image IDs of untagged images.
func (r *Runtime) LoadImage(ctx context.Context, archive io.Reader) ([]string, error) {
	pr, pw := io.Pipe()
	convErr := make(chan error, 1)
	go func() {
		err := withDockerManifest(archive, pw)
		pw.CloseWithError(err)
		convErr <- err
	}()
	names, err := r.load(ctx, pr)
	pr.Close() // stops the copy if docker gave up early
	// A broken archive is better told by the reader than by docker.
	if cerr := <-convErr; cerr != nil && !errors.Is(cerr, io.ErrClosedPipe) {
		return nil, fmt.Errorf("loading image archive: %v: %w", cerr, runtime.ErrInvalid)
	}
	return names, err
}

func (r *Runtime) load(ctx context.Context, archive io.Reader) ([]string, error) {
	res, err := r.c.ImageLoad(ctx, archive, client.ImageLoadWithQuiet(true))
	if err != nil {
		return nil, r.mapErr(err, "loading image archive")
	}
	defer res.Close()
	var names []string
	dec := json.NewDecoder(res)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("loading image archive: reading docker's answer: %w", err)
		}
		if msg.Error != "" {
			return nil, fmt.Errorf("loading image archive: %s: %w", msg.Error, runtime.ErrInvalid)
		}
		for _, line := range strings.Split(msg.Stream, "\n") {
			if name, ok := strings.CutPrefix(line, "Loaded image: "); ok {
				names = append(names, strings.TrimSpace(name))
			} else if id, ok := strings.CutPrefix(line, "Loaded image ID: "); ok {
				names = append(names, strings.TrimSpace(id))
			}
		}
	}
	return names, nil
}

// SaveImages writes the images as one docker-archive.
func (r *Runtime) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	if len(refs) == 0 {
		return fmt.Errorf("saving images: none named: %w", runtime.ErrInvalid)
	}
	doing := fmt.Sprintf("saving images %s", strings.Join(refs, ", "))
	res, err := r.c.ImageSave(ctx, refs)
	if err != nil {
		return r.mapErr(err, doing)
	}
	defer res.Close()
	if _, err := io.Copy(w, res); err != nil {
		return r.mapErr(err, doing)
	}
	return nil
}
