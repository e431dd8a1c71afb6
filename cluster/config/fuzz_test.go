package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input may panic Parse, and what it accepts validates.
// go test -run '^$' -fuzz FuzzParse ./cluster/config/
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	top, _ := filepath.Glob("../../testdata/*.yaml")
	for _, file := range append(files, top...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if err := Validate(c); err != nil {
			t.Errorf("Parse accepted a config that Validate rejects: %v", err)
		}
		if len(NodeNames(c)) != len(c.Nodes) {
			t.Errorf("NodeNames is not one name per node")
		}
	})
}
