// Package gobuild builds Go programs (Kubernetes, etcd, coredns, crictl, CNI
// plugins, small programs of our own) from modules served by the Go module
// proxy, with the local Go toolchain, so that node images can be made on a
// machine that reaches no release download site.
//
// Each build happens in a throwaway wrapper module that requires the module
// to build and replaces what the module itself replaces with local paths
// (the proxy serves those as modules of their own). Binaries are cached by
// the content of their inputs under $XDG_CACHE_HOME/kinc/bin (default
// ~/.cache/kinc/bin): a second call with the same inputs execs nothing but
// `go env`. Builds are reproducible: -trimpath, no VCS stamping, and any
// date stamped in comes from the module's publish time.
package gobuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

// Module says what to build.
type Module struct {
	// Name is how messages call the module (default Path).
	Name string
	// Path and Version name the module the wrapper requires. Path may be
	// empty when every package comes from Files.
	Path    string
	Version string
	// Packages are the main packages to build, as import paths; "./dir"
	// names a package written by Files. A binary is named like `go build`
	// names it: the last path element that is not a major version (/v3).
	Packages []string
	// Replaces are extra `replace OLD => NEW` directives; NEW is "path
	// version" or a path alone. They win over those derived from the
	// module's go.mod.
	Replaces map[string]string
	// LocalReplaceVersion is the version given to modules that Path's own
	// go.mod replaces with a local directory (Kubernetes' staging modules
	// are published as v0.Y.Z); default Version.
	LocalReplaceVersion string
	LDFlags             []string
	Tags                []string
	// Files are written into the wrapper module, by path relative to its
	// root: programs of our own.
	Files map[string]string
	// Copies bring files of the required module into the wrapper, trimmed:
	// for a main package with imports the proxy cannot serve.
	// (omitempty keeps the cache keys of modules without it as they were.)
	Copies []FileCopy `json:",omitempty"`
}

// FileCopy copies From (relative to the required module's root) to To
// (relative to the wrapper's) without the lines that, trimmed, equal one
// of DropLines. Every line to drop must be there, so that a new upstream
// version fails loudly instead of building something else.
type FileCopy struct {
	From, To  string
	DropLines []string
}

// UnavailableError is returned when the Go module proxy does not serve the
// module version (unknown, or refused by the proxy).
type UnavailableError struct {
	Name, Path, Version string
	Reason              string
}

func (e *UnavailableError) Error() string {
	name := e.Name
	if name == "" {
		name = e.Path
	}
	return fmt.Sprintf("%s %s is not available from the Go module proxy: %s", name, e.Version, e.Reason)
}

// Option configures a build.
type Option func(*options) error

type options struct {
	cacheDir string
	goBin    string
	goarch   string
	log      io.Writer
}

// WithCacheDir sets where binaries are cached (default
// $XDG_CACHE_HOME/kinc/bin, else ~/.cache/kinc/bin).
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("empty cache directory")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithGo sets the go command to run (default "go" from PATH).
func WithGo(goBin string) Option {
	return func(o *options) error {
		o.goBin = goBin
		return nil
	}
}

// WithArch sets GOARCH of the binaries (default the host's); GOOS is
// always linux since they run in node images.
func WithArch(goarch string) Option {
	return func(o *options) error {
		o.goarch = goarch
		return nil
	}
}

// WithLog makes builds say what they build and how long it took.
func WithLog(w io.Writer) Option {
	return func(o *options) error {
		o.log = w
		return nil
	}
}

func newOptions(opts []Option) (*options, error) {
	o := &options{goBin: "go", goarch: runtime.GOARCH, log: io.Discard}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("finding the cache directory: %w", err)
		}
		o.cacheDir = filepath.Join(base, "kinc", "bin")
	}
	return o, nil
}

// Build builds every package of m and returns binary name -> path in the
// cache. Binaries already cached for the same inputs are not rebuilt; the
// others are built together into a temporary directory and renamed into
// the cache, so a failed build leaves nothing behind.
func Build(ctx context.Context, m Module, opts ...Option) (map[string]string, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return build(ctx, o, m)
}

func build(ctx context.Context, o *options, m Module) (map[string]string, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	goVersion, err := o.goEnv(ctx, "GOVERSION")
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(m.Packages)) // package -> binary name
	out := make(map[string]string, len(m.Packages))   // binary name -> cached path
	var missing []string
	for _, pkg := range m.Packages {
		name := BinaryName(pkg)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("building %s: two packages make a binary named %q", m.name(), name)
		}
		names[pkg] = name
		out[name] = filepath.Join(o.cacheDir, m.entryDir(name, m.key(goVersion, o.goarch, pkg)), name)
		if _, err := os.Stat(out[name]); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	if err := os.MkdirAll(o.cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cache directory: %w", err)
	}
	tmp, err := os.MkdirTemp(o.cacheDir, ".build-")
	if err != nil {
		return nil, fmt.Errorf("creating build directory: %w", err)
	}
	defer os.RemoveAll(tmp)

	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return nil, err
	}
	var upstream *goMod
	if m.Path != "" {
		var moduleDir string
		if upstream, moduleDir, err = o.upstreamGoMod(ctx, m); err != nil {
			return nil, err
		}
		for _, c := range m.Copies {
			if err := copyTrimmed(filepath.Join(moduleDir, filepath.FromSlash(c.From)), filepath.Join(src, filepath.FromSlash(c.To)), c.DropLines); err != nil {
				return nil, fmt.Errorf("building %s %s: %w", m.name(), m.Version, err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(m.wrapperGoMod(upstream, goVersion)), 0o644); err != nil {
		return nil, err
	}
	for rel, content := range m.Files {
		p := filepath.Join(src, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}

	bin := filepath.Join(tmp, "bin") + string(filepath.Separator)
	args := []string{"build", "-mod=mod", "-buildvcs=false", "-trimpath", "-o", bin}
	if len(m.Tags) > 0 {
		args = append(args, "-tags", strings.Join(m.Tags, ","))
	}
	if len(m.LDFlags) > 0 {
		args = append(args, "-ldflags", strings.Join(m.LDFlags, " "))
	}
	args = append(args, missing...)
	start := time.Now()
	fmt.Fprintf(o.log, "Building %s from %s ...\n", strings.Join(binaryNames(missing), ", "), strings.TrimSpace(m.name()+" "+m.Version))
	if _, err := o.goCmd(ctx, src, args...); err != nil {
		return nil, fmt.Errorf("building %s %s: %w", m.name(), m.Version, err)
	}
	fmt.Fprintf(o.log, "Built %s in %s\n", strings.Join(binaryNames(missing), ", "), time.Since(start).Round(time.Second))

	for _, pkg := range missing {
		name := names[pkg]
		final := filepath.Dir(out[name])
		stage := filepath.Join(tmp, filepath.Base(final))
		if err := os.Mkdir(stage, 0o755); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(bin, name), filepath.Join(stage, name)); err != nil {
			return nil, fmt.Errorf("building %s: go build made no binary %q: %w", m.name(), name, err)
		}
		// Rename of a whole directory is atomic: the cache holds a binary
		// entirely or not at all. A concurrent build of the same inputs
		// may have won the race; its result is the same.
		if err := os.Rename(stage, final); err != nil {
			if _, statErr := os.Stat(out[name]); statErr != nil {
				return nil, fmt.Errorf("caching %s: %w", name, err)
			}
		}
	}
	return out, nil
}

func (m Module) name() string {
	if m.Name != "" {
		return m.Name
	}
	if m.Path != "" {
		return m.Path
	}
	return "local sources"
}

func (m Module) validate() error {
	if len(m.Packages) == 0 {
		return fmt.Errorf("building %s: no packages", m.name())
	}
	if m.Path != "" && m.Version == "" {
		return fmt.Errorf("building %s: no version", m.name())
	}
	if m.Path == "" && len(m.Files) == 0 {
		return errors.New("building: a module needs a Path or Files")
	}
	if m.Path == "" && len(m.Copies) > 0 {
		return fmt.Errorf("building %s: Copies need a module to copy from", m.name())
	}
	for _, pkg := range m.Packages {
		if strings.HasPrefix(pkg, "./") {
			if len(m.Files) == 0 && len(m.Copies) == 0 {
				return fmt.Errorf("building %s: package %q is local but no Files are given", m.name(), pkg)
			}
		} else if m.Path == "" || !(pkg == m.Path || strings.HasPrefix(pkg, m.Path+"/")) {
			// Packages of other modules would be resolved to whatever
			// version is latest, which is not reproducible.
			return fmt.Errorf("building %s: package %q is not in module %q", m.name(), pkg, m.Path)
		}
	}
	return nil
}

// v0 and v1 are never major version suffixes, as for the go command.
var majorVersion = regexp.MustCompile(`^v([2-9]|[1-9][0-9]+)$`)

// BinaryName is the name `go build` gives the binary of a main package.
func BinaryName(pkg string) string {
	pkg = strings.TrimSuffix(pkg, "/")
	base := path.Base(pkg)
	if majorVersion.MatchString(base) && path.Dir(pkg) != "." {
		base = path.Base(path.Dir(pkg))
	}
	return base
}

func binaryNames(pkgs []string) []string {
	names := make([]string, len(pkgs))
	for i, p := range pkgs {
		names[i] = BinaryName(p)
	}
	return names
}

// key identifies one binary by everything that goes into it.
func (m Module) key(goVersion, goarch, pkg string) string {
	m.Name = "" // only a label
	// Alone, as if built by itself: which other packages share the build
	// does not change a binary.
	m.Packages = []string{pkg}
	in := struct {
		Go, Arch, Package string
		M                 Module
	}{goVersion, goarch, pkg, m}
	b, _ := json.Marshal(in) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (m Module) entryDir(name, key string) string {
	v := m.Version
	if v == "" {
		v = "local"
	}
	return fmt.Sprintf("%s@%s-%s", name, v, key[:16])
}

// goMod is what the wrapper takes over from the required module's go.mod,
// as `go mod edit -json` prints it.
type goMod struct {
	Go      string
	GoDebug []struct{ Key, Value string }
	Replace []struct {
		Old, New struct{ Path, Version string }
	}
	Exclude []struct{ Path, Version string }
}

type downloadResult struct {
	Path, Version, Info, GoMod, Dir, Error string
}

func (o *options) download(ctx context.Context, name, modPath, version string) (*downloadResult, error) {
	// An empty directory: `go mod download` outside any module.
	dir, err := os.MkdirTemp("", "kinc-gobuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	stdout, err := o.goCmd(ctx, dir, "mod", "download", "-json", modPath+"@"+version)
	var res downloadResult
	if jsonErr := json.Unmarshal(stdout, &res); jsonErr != nil {
		if err != nil {
			return nil, fmt.Errorf("downloading %s@%s: %w", modPath, version, err)
		}
		return nil, fmt.Errorf("downloading %s@%s: reading go's answer: %w", modPath, version, jsonErr)
	}
	if res.Error != "" {
		reason := strings.TrimPrefix(res.Error, modPath+"@"+version+": ")
		reason = strings.Join(strings.Fields(strings.ReplaceAll(reason, "\n\t", "; ")), " ")
		return nil, &UnavailableError{Name: name, Path: modPath, Version: version, Reason: reason}
	}
	if err != nil {
		return nil, fmt.Errorf("downloading %s@%s: %w", modPath, version, err)
	}
	return &res, nil
}

// PublishTime is when the proxy first saw the module version; it stands in
// for a build date so that rebuilds are byte-identical.
func PublishTime(ctx context.Context, modPath, version string, opts ...Option) (time.Time, error) {
	o, err := newOptions(opts)
	if err != nil {
		return time.Time{}, err
	}
	return o.publishTime(ctx, "", modPath, version)
}

func (o *options) publishTime(ctx context.Context, name, modPath, version string) (time.Time, error) {
	res, err := o.download(ctx, name, modPath, version)
	if err != nil {
		return time.Time{}, err
	}
	b, err := os.ReadFile(res.Info)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading %s@%s info: %w", modPath, version, err)
	}
	var info struct{ Time time.Time }
	if err := json.Unmarshal(b, &info); err != nil {
		return time.Time{}, fmt.Errorf("reading %s@%s info: %w", modPath, version, err)
	}
	return info.Time.UTC(), nil
}

// upstreamGoMod downloads the module and reads its go.mod; it returns the
// module's directory in the module cache too.
func (o *options) upstreamGoMod(ctx context.Context, m Module) (*goMod, string, error) {
	res, err := o.download(ctx, m.Name, m.Path, m.Version)
	if err != nil {
		return nil, "", err
	}
	stdout, err := o.goCmd(ctx, filepath.Dir(res.GoMod), "mod", "edit", "-json", res.GoMod)
	if err != nil {
		return nil, "", fmt.Errorf("reading go.mod of %s@%s: %w", m.Path, m.Version, err)
	}
	var gm goMod
	if err := json.Unmarshal(stdout, &gm); err != nil {
		return nil, "", fmt.Errorf("reading go.mod of %s@%s: %w", m.Path, m.Version, err)
	}
	return &gm, res.Dir, nil
}

func copyTrimmed(from, to string, drop []string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("copying %s: %w", filepath.Base(from), err)
	}
	dropped := map[string]bool{}
	var out []string
	for _, line := range strings.SplitAfter(string(data), "\n") {
		t := strings.TrimSpace(line)
		if slices.Contains(drop, t) {
			dropped[t] = true
			continue
		}
		out = append(out, line)
	}
	for _, d := range drop {
		if !dropped[d] {
			return fmt.Errorf("copying %s: no line %q to drop", filepath.Base(from), d)
		}
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, []byte(strings.Join(out, "")), 0o644)
}

// wrapperModule is the wrapper's module path: never a real one.
const wrapperModule = "kinc.invalid/gobuild"

// wrapperGoMod renders the wrapper's go.mod. It keeps the upstream go and
// godebug lines, so the binaries get the GODEBUG defaults upstream builds
// get, and its excludes, so versions resolve as upstream resolves them.
func (m Module) wrapperGoMod(up *goMod, goVersion string) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "module %s\n\n", wrapperModule)
	goLine := strings.TrimPrefix(goVersion, "go")
	if i := strings.IndexAny(goLine, " -+"); i >= 0 {
		goLine = goLine[:i]
	}
	if up != nil && up.Go != "" {
		goLine = up.Go
	}
	fmt.Fprintf(&b, "go %s\n", goLine)
	if up != nil {
		for _, d := range up.GoDebug {
			fmt.Fprintf(&b, "\ngodebug %s=%s\n", d.Key, d.Value)
		}
	}
	if m.Path != "" {
		fmt.Fprintf(&b, "\nrequire %s %s\n", m.Path, m.Version)
	}
	replaces := map[string]string{}
	if up != nil {
		localVersion := m.LocalReplaceVersion
		if localVersion == "" {
			localVersion = m.Version
		}
		for _, r := range up.Replace {
			if r.New.Version != "" {
				replaces[modVersion(r.Old.Path, r.Old.Version)] = r.New.Path + " " + r.New.Version
				continue
			}
			// A local directory: served by the proxy as a module of its own,
			// unless the version cannot be one of that path (etcd points
			// paths it forbids at ./FORBIDDEN_DEPENDENCY).
			if majorMatches(r.Old.Path, localVersion) {
				replaces[modVersion(r.Old.Path, r.Old.Version)] = r.Old.Path + " " + localVersion
			}
		}
		for _, e := range up.Exclude {
			fmt.Fprintf(&b, "\nexclude %s %s\n", e.Path, e.Version)
		}
	}
	for old, repl := range m.Replaces {
		replaces[old] = repl
	}
	if len(replaces) > 0 {
		olds := make([]string, 0, len(replaces))
		for old := range replaces {
			olds = append(olds, old)
		}
		sort.Strings(olds)
		b.WriteString("\nreplace (\n")
		for _, old := range olds {
			fmt.Fprintf(&b, "\t%s => %s\n", old, replaces[old])
		}
		b.WriteString(")\n")
	}
	return b.String()
}

// majorMatches tells whether version can be a version of module path:
// v0 and v1 for paths without a /vN suffix, vN for paths with one.
func majorMatches(modPath, version string) bool {
	major := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0]
	if strings.HasPrefix(modPath, "gopkg.in/") {
		return true // .vN suffixes: not ours to judge
	}
	if last := path.Base(modPath); majorVersion.MatchString(last) {
		return last == "v"+major
	}
	return major == "0" || major == "1" || strings.HasSuffix(version, "+incompatible")
}

func modVersion(p, v string) string {
	if v == "" {
		return p
	}
	return p + " " + v
}

func (o *options) goEnv(ctx context.Context, name string) (string, error) {
	out, err := o.goCmd(ctx, "", "env", name)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// goCmd runs the go command with an environment of our own: the user's
// GOFLAGS (kinc's own build tags, say) must not leak into these builds, and
// toolchain switching or a go.work would make them depend on more than
// their inputs. GOPROXY, GOCACHE and GOMODCACHE stay shared.
func (o *options) goCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, o.goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.goarch,
		"GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local", "GO111MODULE=on",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return stdout.Bytes(), ctx.Err()
		}
		return stdout.Bytes(), fmt.Errorf("go %s: %w\n%s", args[0], err, tail(stderr.String(), 40))
	}
	return stdout.Bytes(), nil
}

// tail keeps the last n lines: the first error of a failed build is near
// the end and the rest is noise.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
