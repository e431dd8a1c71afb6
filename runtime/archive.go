package runtime

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// File is one regular file to put in a tar stream for CopyTo.
type File struct {
	Name    string // path inside the archive, relative
	Content []byte
	Mode    int64 // 0644 when 0
}

// TarFiles returns a tar stream holding files (and their parent
// directories), ready for CopyTo.
func TarFiles(files ...File) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	now := time.Now()
	for _, f := range files {
		name := strings.TrimPrefix(path.Clean("/"+f.Name), "/")
		var parents []string
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- { // outermost first
			_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parents[i] + "/", Mode: 0o755, ModTime: now})
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		// Writes to a bytes.Buffer cannot fail.
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(f.Content)), ModTime: now})
		_, _ = tw.Write(f.Content)
	}
	_ = tw.Close()
	return &buf
}

// ReadTarFile returns the content of the regular file called name (or, when
// name is empty, of the first regular file) in a tar stream, as CopyFrom
// returns it. The stream holds the copied path under its base name.
func ReadTarFile(r io.Reader, name string) ([]byte, error) {
	tr := tar.NewReader(r)
	want := strings.TrimPrefix(path.Clean("/"+name), "/")
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading %q from tar stream: %w", name, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar stream: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if name == "" || strings.TrimPrefix(path.Clean("/"+h.Name), "/") == want {
			return io.ReadAll(tr)
		}
	}
}
