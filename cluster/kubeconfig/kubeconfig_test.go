package kubeconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testEntry(cluster, server string) *Entry {
	return &Entry{
		Name:                     ContextName(cluster),
		Server:                   server,
		CertificateAuthorityData: []byte("ca of " + cluster),
		ClientCertificateData:    []byte("cert of " + cluster),
		ClientKeyData:            []byte("key of " + cluster),
	}
}

// setup writes data (nil: no file) to a kubeconfig in a fresh directory.
func setup(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), ".kube", "config")
	if data != nil {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustMerge(t *testing.T, p string, e *Entry) {
	t.Helper()
	if err := Merge(context.Background(), p, e); err != nil {
		t.Fatalf("Merge %s: %v", e.Name, err)
	}
}

func mustRemove(t *testing.T, p, cluster string) {
	t.Helper()
	if err := Remove(context.Background(), p, cluster); err != nil {
		t.Fatalf("Remove %s: %v", cluster, err)
	}
}

// onlyFiles fails if the kubeconfig's directory holds anything but want
// (no lock or temporary file left behind).
func onlyFiles(t *testing.T, p string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("directory holds %v, want %v", got, want)
	}
}

// The layout guarantee: what kubectl writes, and hand-written files in the
// indented style, re-encode to the same bytes.
func TestLayoutRoundTrip(t *testing.T) {
	for _, name := range []string{"kubectl.yaml", "kubectl-nulls.yaml", "empty.yaml", "wide.yaml"} {
		t.Run(name, func(t *testing.T) {
			in := readFixture(t, name)
			d, err := parse(name, in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := d.encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, out) {
				t.Errorf("re-encoded differs:\n%s", out)
			}
		})
	}
}

func TestMergeThenRemove(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string // "" for no file
		golden  string
		after   string // golden file after Remove, when not the original
		kubectl string // fixture kubectl wrote that the file must equal after Remove
	}{
		// What is left is what kubectl leaves when it deletes its last entries.
		{name: "missing file", golden: "merge-missing.yaml", kubectl: "empty.yaml"},
		{name: "empty file", fixture: "empty-file", golden: "merge-missing.yaml", kubectl: "empty.yaml"},
		{name: "only comments", fixture: "comments-only.yaml", golden: "merge-comments-only.yaml", after: "remove-comments-only.yaml"},
		{name: "kubectl file", fixture: "kubectl.yaml", golden: "merge-kubectl.yaml"},
		{name: "indented lists with comments", fixture: "wide.yaml", golden: "merge-wide.yaml"},
		// Not our layout: re-indented once, content kept.
		{name: "four-space indent", fixture: "indent4.yaml", golden: "merge-indent4.yaml", after: "remove-indent4.yaml"},
		{name: "kubectl file with no contexts or users", fixture: "kubectl-nulls.yaml", golden: "merge-kubectl-nulls.yaml"},
		// Lists Merge had to add stay, as null.
		{name: "no current-context, contexts or users", fixture: "no-current.yaml", golden: "merge-no-current.yaml", after: "remove-no-current.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var orig []byte
			if tc.fixture == "empty-file" {
				orig = []byte{}
			} else if tc.fixture != "" {
				orig = readFixture(t, tc.fixture)
			}
			p := setup(t, orig)
			mustMerge(t, p, testEntry("dev", "https://127.0.0.1:40123"))
			golden(t, tc.golden, read(t, p))
			onlyFiles(t, p, "config")

			mustRemove(t, p, "dev")
			switch {
			case tc.kubectl != "":
				if got, want := read(t, p), readFixture(t, tc.kubectl); !bytes.Equal(got, want) {
					t.Errorf("after Remove:\n%s\nwant:\n%s", got, want)
				}
			case tc.after != "":
				golden(t, tc.after, read(t, p))
			default:
				if got := read(t, p); !bytes.Equal(got, orig) {
					t.Errorf("after Remove:\n%s\nwant:\n%s", got, orig)
				}
			}
		})
	}
}

func TestMergeTwiceReplaces(t *testing.T) {
	orig := readFixture(t, "kubectl.yaml")
	p := setup(t, orig)
	mustMerge(t, p, testEntry("dev", "https://127.0.0.1:1"))
	mustMerge(t, p, testEntry("dev", "https://127.0.0.1:2"))
	got := string(read(t, p))
	for s, want := range map[string]int{"name: kinc-dev\n": 3, "previous-current-context: dev\n": 1} {
		if n := strings.Count(got, s); n != want {
			t.Errorf("%q appears %d times, want %d, in\n%s", s, n, want, got)
		}
	}
	if strings.Contains(got, "127.0.0.1:1\n") || !strings.Contains(got, "server: https://127.0.0.1:2\n") {
		t.Errorf("second Merge did not replace the server:\n%s", got)
	}
	mustRemove(t, p, "dev")
	if got := read(t, p); !bytes.Equal(got, orig) {
		t.Errorf("after Remove:\n%s", got)
	}
}

func TestCurrentContext(t *testing.T) {
	const useProd = "current-context: prod\n"
	for _, tc := range []struct {
		name  string
		steps []string // "+x" merges cluster x, "-x" removes it, "use" makes prod current as kubectl would
		want  string   // current-context line after the steps; "" means the original file
	}{
		{name: "restored", steps: []string{"+a", "-a"}},
		{name: "chain removed in order", steps: []string{"+a", "+b", "-a", "-b"}},
		{name: "chain removed in reverse", steps: []string{"+a", "+b", "-b", "-a"}},
		{name: "chain with a re-create", steps: []string{"+a", "+b", "+a", "-a", "-b"}},
		{name: "user switched meanwhile", steps: []string{"+a", "use", "-a"}, want: useProd},
		{name: "re-created after a switch", steps: []string{"+a", "+b", "use", "-a", "+b", "-b"}, want: useProd},
		{name: "other cluster removed", steps: []string{"+a", "-zzz"}, want: "current-context: kinc-a\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := readFixture(t, "kubectl.yaml")
			p := setup(t, orig)
			for _, s := range tc.steps {
				switch {
				case s == "use":
					b := read(t, p)
					i := bytes.Index(b, []byte("current-context: "))
					j := i + bytes.IndexByte(b[i:], '\n') + 1
					b = append(append(append([]byte{}, b[:i]...), useProd...), b[j:]...)
					if err := os.WriteFile(p, b, 0o600); err != nil {
						t.Fatal(err)
					}
				case s[0] == '+':
					mustMerge(t, p, testEntry(s[1:], "https://127.0.0.1:1"))
				default:
					mustRemove(t, p, s[1:])
				}
			}
			got := read(t, p)
			if tc.want == "" {
				if !bytes.Equal(got, orig) {
					t.Errorf("file differs from the original:\n%s", got)
				}
				return
			}
			if !bytes.Contains(got, []byte("\n"+tc.want)) {
				t.Errorf("want %q in\n%s", tc.want, got)
			}
		})
	}
}

// With nothing to restore, Remove leaves current-context empty, as kind does.
func TestNothingToRestore(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(d *document)
	}{
		// kinc-b recorded kinc-a; the user deleted kinc-a's context by hand.
		{"recorded context gone", func(d *document) { d.drop("contexts", "kinc-a") }},
		// Written by another tool or an older kinc: no record at all.
		{"no record", func(d *document) { d.dropRecord("kinc-b") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := setup(t, readFixture(t, "kubectl.yaml"))
			mustMerge(t, p, testEntry("a", "https://127.0.0.1:1"))
			mustMerge(t, p, testEntry("b", "https://127.0.0.1:2"))
			d, err := parse(p, read(t, p))
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(d)
			b, err := d.encode()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			mustRemove(t, p, "b")
			if got := read(t, p); !bytes.Contains(got, []byte("\ncurrent-context: \"\"\n")) {
				t.Errorf("want an empty current-context:\n%s", got)
			}
		})
	}
}

func TestRemoveNothing(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		p := setup(t, nil)
		mustRemove(t, p, "dev")
		if _, err := os.Stat(filepath.Dir(p)); !os.IsNotExist(err) {
			t.Errorf("Remove created %s: %v", filepath.Dir(p), err)
		}
	})
	t.Run("unknown cluster", func(t *testing.T) {
		orig := readFixture(t, "wide.yaml")
		p := setup(t, orig)
		before, _ := os.Stat(p)
		mustRemove(t, p, "dev")
		after, _ := os.Stat(p)
		if !os.SameFile(before, after) {
			t.Error("Remove of an unknown cluster rewrote the file")
		}
		if !bytes.Equal(read(t, p), orig) {
			t.Error("Remove of an unknown cluster changed the file")
		}
		onlyFiles(t, p, "config")
	})
}

func TestConcurrentMerge(t *testing.T) {
	p := setup(t, readFixture(t, "kubectl.yaml"))
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- Merge(context.Background(), p, testEntry(fmt.Sprint("c", i), fmt.Sprint("https://127.0.0.1:", 30000+i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := string(read(t, p))
	for i := range n {
		if c := strings.Count(got, fmt.Sprintf("name: kinc-c%d\n", i)); c != 3 {
			t.Errorf("kinc-c%d appears %d times, want 3 (cluster, context, user)", i, c)
		}
	}
	onlyFiles(t, p, "config")

	// And removing them all, concurrently too, gives the original back.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Remove(context.Background(), p, fmt.Sprint("c", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := read(t, p); !bytes.Equal(got, readFixture(t, "kubectl.yaml")) {
		t.Errorf("after removing all:\n%s", got)
	}
}

func TestInvalidFileUntouched(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"syntax", string(readFixture(t, "invalid.yaml")), "line 6: mapping values are not allowed"},
		{"clusters not a list", "apiVersion: v1\nkind: Config\nclusters: oops\n", "line 3: clusters is not a list"},
		{"entry not a mapping", "users:\n- name: a\n  user: {}\n- just-a-string\n", "line 4: an entry of users is not a mapping"},
		{"not a mapping", "- a\n- b\n", "line 1: the document is not a mapping"},
		{"two documents", "kind: Config\n---\nkind: Config\n", "line 2: a second YAML document"},
		{"current-context a map", "current-context:\n  a: b\n", "line 1: current-context is not a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := setup(t, []byte(tc.data))
			for _, op := range []func() error{
				func() error { return Merge(context.Background(), p, testEntry("dev", "https://127.0.0.1:1")) },
				func() error { return Remove(context.Background(), p, "dev") },
			} {
				err := op()
				if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error = %v, want the file name and %q", err, tc.want)
				}
			}
			if got := string(read(t, p)); got != tc.data {
				t.Errorf("file changed:\n%s", got)
			}
			onlyFiles(t, p, "config")
		})
	}
}

func TestFileModes(t *testing.T) {
	t.Run("new file and directory", func(t *testing.T) {
		p := setup(t, nil)
		mustMerge(t, p, testEntry("dev", "https://127.0.0.1:1"))
		checkMode(t, p, 0o600)
		checkMode(t, filepath.Dir(p), fs.ModeDir|0o700)
	})
	for _, tc := range []struct {
		name       string
		orig, want fs.FileMode
	}{
		{"loose made 0600", 0o644, 0o600},
		{"stricter kept", 0o400, 0o400},
		{"group read dropped", 0o640, 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := setup(t, readFixture(t, "kubectl.yaml"))
			if err := os.Chmod(p, tc.orig); err != nil {
				t.Fatal(err)
			}
			mustMerge(t, p, testEntry("dev", "https://127.0.0.1:1"))
			checkMode(t, p, tc.want)
		})
	}
}

func checkMode(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s mode = %v, want %v", p, fi.Mode(), want)
	}
}

func TestLockHeld(t *testing.T) {
	orig := readFixture(t, "kubectl.yaml")
	p := setup(t, orig)
	if err := os.WriteFile(p+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := Merge(context.Background(), p, testEntry("dev", "https://127.0.0.1:1"), WithLockTimeout(200*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), p+".lock") || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("error = %v, want one naming the lock file to delete", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %s, want about 200ms", d)
	}
	if !bytes.Equal(read(t, p), orig) {
		t.Error("file changed while locked")
	}
	if _, err := os.Stat(p + ".lock"); err != nil {
		t.Errorf("someone else's lock was removed: %v", err)
	}

	// Released in time: the wait succeeds.
	go func() { time.Sleep(50 * time.Millisecond); os.Remove(p + ".lock") }()
	mustMerge(t, p, testEntry("dev", "https://127.0.0.1:1"))

	if err := Merge(context.Background(), p, testEntry("dev", "x"), WithLockTimeout(0)); err == nil {
		t.Error("a zero lock timeout should be refused")
	}

	// A cancelled context stops the wait at once.
	if err := os.WriteFile(p+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Remove(ctx, p, "dev"); !errors.Is(err, context.Canceled) {
		t.Errorf("Remove with a cancelled context: %v", err)
	}
}

func TestSymlinkKept(t *testing.T) {
	orig := readFixture(t, "kubectl.yaml")
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles-kubeconfig")
	if err := os.WriteFile(real, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	mustMerge(t, link, testEntry("dev", "https://127.0.0.1:1"))
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("symlink replaced: %v %v", fi.Mode(), err)
	}
	if !bytes.Contains(read(t, real), []byte("name: kinc-dev")) {
		t.Error("the link's target was not written")
	}
	mustRemove(t, link, "dev")
	if !bytes.Equal(read(t, real), orig) {
		t.Error("target differs after Remove")
	}
}

func TestEntryRequired(t *testing.T) {
	p := setup(t, nil)
	for _, e := range []*Entry{nil, {Server: "https://x"}, {Name: "kinc-a"}} {
		if err := Merge(context.Background(), p, e); err == nil {
			t.Errorf("Merge(%+v) succeeded", e)
		}
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("a refused Merge created the file: %v", err)
	}
}
