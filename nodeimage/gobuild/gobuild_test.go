package gobuild

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestBinaryName(t *testing.T) {
	for pkg, want := range map[string]string{
		"k8s.io/kubernetes/cmd/kubeadm": "kubeadm",
		"go.etcd.io/etcd/etcdctl/v3":    "etcdctl",
		"github.com/coredns/coredns":    "coredns",
		"example.com/tool/v12":          "tool",
		"example.com/tool/v1":           "v1", // v1 is no major version suffix
		"./pause":                       "pause",
		"./pause/":                      "pause",
		"v2":                            "v2", // nothing to fall back on
	} {
		t.Run(pkg, func(t *testing.T) {
			if got := BinaryName(pkg); got != want {
				t.Errorf("BinaryName(%q) = %q, want %q", pkg, got, want)
			}
		})
	}
}

func TestMajorMatches(t *testing.T) {
	for _, tc := range []struct {
		path, version string
		want          bool
	}{
		{"k8s.io/api", "v0.34.4", true},
		{"go.etcd.io/etcd/api/v3", "v3.6.5", true},
		{"go.etcd.io/etcd", "v3.6.5", false},
		{"go.etcd.io/etcd/v3", "v2.0.0", false},
		{"example.com/x", "v1.2.3", true},
		{"example.com/x", "v2.0.0+incompatible", true},
		{"gopkg.in/yaml.v3", "v3.0.1", true},
	} {
		if got := majorMatches(tc.path, tc.version); got != tc.want {
			t.Errorf("majorMatches(%q, %q) = %v, want %v", tc.path, tc.version, got, tc.want)
		}
	}
}

func TestWrapperGoMod(t *testing.T) {
	up := &goMod{Go: "1.24.0"}
	up.GoDebug = append(up.GoDebug, struct{ Key, Value string }{"default", "go1.24"})
	for _, r := range [][4]string{
		{"k8s.io/api", "", "./staging/src/k8s.io/api", ""},
		{"k8s.io/client-go", "", "./staging/src/k8s.io/client-go", ""},
		{"example.com/forked", "v1.0.0", "example.com/fork", "v1.0.1"},
		{"example.com/overridden", "", "./local", ""},
		{"example.com/forbidden/v3", "", "./FORBIDDEN_DEPENDENCY", ""},
		{"example.com/other", "", "./FORBIDDEN_DEPENDENCY", ""},
	} {
		var rep struct {
			Old, New struct{ Path, Version string }
		}
		rep.Old.Path, rep.Old.Version, rep.New.Path, rep.New.Version = r[0], r[1], r[2], r[3]
		up.Replace = append(up.Replace, rep)
	}
	up.Exclude = append(up.Exclude, struct{ Path, Version string }{"example.com/bad", "v0.1.0"})
	m := Module{
		Path:                "k8s.io/kubernetes",
		Version:             "v1.34.4",
		Packages:            []string{"k8s.io/kubernetes/cmd/kubeadm"},
		LocalReplaceVersion: "v0.34.4",
		Replaces:            map[string]string{"example.com/overridden": "example.com/overridden v2.0.0+incompatible"},
	}
	got := m.wrapperGoMod(up, "go1.26.8")
	golden := filepath.Join("testdata", "wrapper.go.mod")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("wrapper go.mod differs from %s:\n%s", golden, got)
	}

	t.Run("files only", func(t *testing.T) {
		m := Module{Files: map[string]string{"x/main.go": "package main"}, Packages: []string{"./x"}}
		want := "module kinc.invalid/gobuild\n\ngo 1.26.8\n"
		if got := m.wrapperGoMod(nil, "go1.26.8 X:nodwarf5"); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

const helloMain = `package main

import "fmt"

var greeting = "unset"

func main() { fmt.Println(greeting) }
`

func TestBuildLocalFiles(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	m := Module{
		Files:    map[string]string{"hello/main.go": helloMain},
		Packages: []string{"./hello"},
		LDFlags:  []string{"-X", "main.greeting=hi"},
	}
	bins, err := Build(ctx, m, WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bins["hello"]).Output(); err != nil || string(out) != "hi\n" {
		t.Fatalf("hello printed %q (%v), want hi", out, err)
	}
	if !strings.HasPrefix(bins["hello"], cache+string(filepath.Separator)) {
		t.Errorf("binary %s is not in the cache %s", bins["hello"], cache)
	}
	first, err := os.Stat(bins["hello"])
	if err != nil {
		t.Fatal(err)
	}

	t.Run("cached", func(t *testing.T) {
		again, err := Build(ctx, m, WithCacheDir(cache))
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(again["hello"])
		if err != nil {
			t.Fatal(err)
		}
		if again["hello"] != bins["hello"] || !st.ModTime().Equal(first.ModTime()) {
			t.Errorf("second build gave %s (%s), want the cached %s (%s)", again["hello"], st.ModTime(), bins["hello"], first.ModTime())
		}
	})
	t.Run("other inputs, other entry", func(t *testing.T) {
		m2 := m
		m2.LDFlags = []string{"-X", "main.greeting=bye"}
		other, err := Build(ctx, m2, WithCacheDir(cache))
		if err != nil {
			t.Fatal(err)
		}
		if other["hello"] == bins["hello"] {
			t.Fatalf("different ldflags share cache entry %s", other["hello"])
		}
		if out, _ := exec.Command(other["hello"]).Output(); string(out) != "bye\n" {
			t.Errorf("hello printed %q, want bye", out)
		}
	})
	t.Run("failed build leaves nothing", func(t *testing.T) {
		empty := t.TempDir()
		bad := Module{Files: map[string]string{"broken/main.go": "package main\nfunc main() { undefinedThing() }\n"}, Packages: []string{"./broken"}}
		_, err := Build(ctx, bad, WithCacheDir(empty))
		if err == nil || !strings.Contains(err.Error(), "undefined: undefinedThing") {
			t.Fatalf("err = %v, want the compiler's message", err)
		}
		entries, _ := os.ReadDir(empty)
		for _, e := range entries {
			t.Errorf("cache holds %s after a failed build", e.Name())
		}
	})
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".build-") {
			t.Errorf("build directory %s left behind", e.Name())
		}
	}
}

func TestBuildInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Module
		want string
	}{
		{"no packages", Module{Path: "example.com/x", Version: "v1.0.0"}, "no packages"},
		{"no version", Module{Path: "example.com/x", Packages: []string{"example.com/x"}}, "no version"},
		{"nothing", Module{Packages: []string{"./x"}}, "needs a Path or Files"},
		{"foreign package", Module{Path: "example.com/x", Version: "v1.0.0", Packages: []string{"example.com/xy/cmd"}}, `package "example.com/xy/cmd" is not in module "example.com/x"`},
		{"duplicate names", Module{Path: "example.com/x", Version: "v1.0.0", Packages: []string{"example.com/x/a/tool", "example.com/x/b/tool"}}, `two packages make a binary named "tool"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(context.Background(), tc.m, WithCacheDir(t.TempDir()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %s", err, tc.want)
			}
		})
	}
}

// TestKeyIgnoresOtherPackages: a binary built with others is the one built
// alone, so both builds must find the same cache entry.
func TestKeyIgnoresOtherPackages(t *testing.T) {
	one := Module{Path: "example.com/x", Version: "v1.0.0", Packages: []string{"example.com/x/a"}}
	two := one
	two.Packages = []string{"example.com/x/a", "example.com/x/b"}
	if one.key("go1.26.8", "amd64", "example.com/x/a") != two.key("go1.26.8", "amd64", "example.com/x/a") {
		t.Error("the key of a depends on b being built too")
	}
	other := one
	other.LDFlags = []string{"-s"}
	if one.key("go1.26.8", "amd64", "example.com/x/a") == other.key("go1.26.8", "amd64", "example.com/x/a") {
		t.Error("the key ignores ldflags")
	}
}
