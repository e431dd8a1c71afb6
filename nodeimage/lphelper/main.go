// Command lphelper makes and removes the directories of local-path
// volumes. local-path-provisioner runs it in a helper pod on the volume's
// node, as `lphelper -p PATH -s SIZE -m MODE -a create|delete`; upstream
// runs busybox sh scripts instead, and kinc's images have no shell.
//
// It is built into kinc's local-path image by nodeimage (embedded as
// source and compiled with gobuild), so it has no dependencies beyond the
// standard library.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("p", "", "volume directory")
	flag.String("s", "", "volume size in bytes (unused: directories have none)")
	mode := flag.String("m", "Filesystem", "volume mode")
	action := flag.String("a", "", "create or delete")
	flag.Parse()
	if err := run(*action, *dir, *mode); err != nil {
		fmt.Fprintf(os.Stderr, "lphelper: %v\n", err)
		os.Exit(1)
	}
}

func run(action, dir, mode string) error {
	// A relative or root path would create or delete the wrong thing.
	if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
		return fmt.Errorf("refusing volume directory %q", dir)
	}
	if mode != "Filesystem" {
		return fmt.Errorf("volume mode %q is not supported", mode)
	}
	switch action {
	case "create":
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		// MkdirAll's mode is filtered by the umask; volumes are for any
		// pod user.
		return os.Chmod(dir, 0o777)
	case "delete":
		return os.RemoveAll(dir)
	}
	return fmt.Errorf("unknown action %q (want create or delete)", action)
}
