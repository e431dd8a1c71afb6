package cli

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

// run runs kinc in-process with a clean environment.
func run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code = runApp(context.Background(), e, append([]string{"kinc"}, args...))
	return code, out.String(), errOut.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "", "version")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"kinc " + version, "go1.", "default node image: " + defaultNodeImage} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		shell, want string
		code        int
	}{
		{"bash", "complete -o bashdefault -o default -F _kinc_complete kinc", 0},
		{"zsh", "compdef _kinc kinc", 0},
		{"fish", "complete -c kinc", 0},
		{"tcsh", "", 2},
		{"", "", 2},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			code, out, errOut := run(t, "", "completion", tc.shell)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
			if tc.code != 0 && !strings.Contains(errOut, "bash, zsh") {
				t.Errorf("error does not list the shells: %s", errOut)
			}
		})
	}
}

func TestBashCompletionScriptRuns(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	_, script, _ := run(t, "", "completion", "bash")
	cmd := exec.Command("bash", "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash rejects the completion script: %v\n%s", err, out)
	}
}

func TestUnknownRuntime(t *testing.T) {
	code, _, errOut := run(t, "", "--runtime", "lxc", "version")
	if code != 2 || !strings.Contains(errOut, `unknown runtime "lxc"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
