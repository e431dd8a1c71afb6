package cluster

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kinc-dev/kinc/cluster/config"
)

// readmeExample is a complete config shown in the README.
type readmeExample struct {
	line int // of the block's first YAML line in the README
	text string
}

// readmeExamples returns the ```yaml blocks of a Markdown text that start
// with apiVersion: the ones a user may copy whole into a file.
func readmeExamples(md string) []readmeExample {
	var out []readmeExample
	var block []string
	in, start := false, 0
	for i, l := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(l) == "```yaml":
			in, start, block = true, i+2, nil
		case in && strings.TrimSpace(l) == "```":
			in = false
			if len(block) > 0 && strings.HasPrefix(block[0], "apiVersion:") {
				out = append(out, readmeExample{start, strings.Join(block, "\n") + "\n"})
			}
		case in:
			block = append(block, l)
		}
	}
	return out
}

// Every complete config in the README loads, validates and plans (its
// patches applied to the kubeadm configs), so that what users copy from it
// works.
func TestREADMEExamples(t *testing.T) {
	md, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(string(md))
	// Fewer means the section or the fences changed and the test would
	// pass on nothing.
	if len(examples) < 5 {
		t.Fatalf("found %d complete yaml examples in README.md, want at least 5", len(examples))
	}
	for _, ex := range examples {
		t.Run(fmt.Sprintf("line_%d", ex.line), func(t *testing.T) {
			name := fmt.Sprintf("README.md example at line %d", ex.line)
			c, err := config.Parse(name, []byte(ex.text), config.WithDefaultImage("kinc/node:test"))
			if err != nil {
				t.Fatalf("%v\n--- example:\n%s", err, ex.text)
			}
			if _, err := NewPlan(c, "v1.34.4"); err != nil {
				t.Errorf("%v\n--- example:\n%s", err, ex.text)
			}
		})
	}
}

func TestReadmeExamplesExtraction(t *testing.T) {
	md := "text\n```yaml\napiVersion: a\nkind: b\n```\n```yaml\nnodes: []\n```\n```sh\napiVersion: no\n```\n"
	got := readmeExamples(md)
	if len(got) != 1 || got[0].line != 3 || got[0].text != "apiVersion: a\nkind: b\n" {
		t.Errorf("readmeExamples = %+v, want one example at line 3", got)
	}
}
