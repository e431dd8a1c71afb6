package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	vol := filepath.Join(t.TempDir(), "pvc-1_default_data")
	if err := run("create", vol, "Filesystem"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(vol)
	if err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("after create: %v %v, want a 0777 directory", fi, err)
	}
	os.WriteFile(filepath.Join(vol, "data"), []byte("x"), 0o644)
	if err := run("delete", vol, "Filesystem"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vol); !os.IsNotExist(err) {
		t.Errorf("after delete: %v", err)
	}
	for _, tc := range []struct{ action, dir, mode, want string }{
		{"delete", "/", "Filesystem", "refusing"},
		{"create", "relative/dir", "Filesystem", "refusing"},
		{"create", vol, "Block", "not supported"},
		{"resize", vol, "Filesystem", "unknown action"},
	} {
		if err := run(tc.action, tc.dir, tc.mode); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q, %q, %q) = %v, want %s", tc.action, tc.dir, tc.mode, err, tc.want)
		}
	}
}
