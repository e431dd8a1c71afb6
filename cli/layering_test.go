package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// Library packages must never import cli/: the command line depends on the
// library, not the other way round.
func TestLibraryDoesNotImportCLI(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "remote", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "github.com/kinc-dev/kinc/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const cliPkg = "github.com/kinc-dev/kinc/cli"
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := fields[0]
		if pkg == "github.com/kinc-dev/kinc" || strings.HasPrefix(pkg, cliPkg) {
			continue
		}
		checked++
		for _, dep := range fields[1:] {
			if dep == cliPkg || strings.HasPrefix(dep, cliPkg+"/") {
				t.Errorf("library package %s imports %s", pkg, dep)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no library package was checked")
	}
}
