package nodeimage

import (
	"archive/tar"
	"strings"
	"testing"
)

func syntheticBase(drop string) *baseTree {
	t := &baseTree{entries: map[string]*tar.Header{}, needs: map[string][]string{}, runpaths: map[string][]string{}}
	add := func(p string, typ byte, link string) {
		if p != drop {
			t.entries[p] = &tar.Header{Name: p, Typeflag: typ, Linkname: link}
		}
	}
	for _, d := range []string{"etc", "etc/alternatives", "usr", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu/xtables"} {
		add(d, tar.TypeDir, "")
	}
	add("lib64", tar.TypeSymlink, "usr/lib64")
	add("usr/lib64/ld-linux-x86-64.so.2", tar.TypeSymlink, "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
	add("usr/sbin/iptables", tar.TypeSymlink, "/etc/alternatives/iptables")
	add("etc/alternatives/iptables", tar.TypeSymlink, "/usr/sbin/iptables-nft")
	add("usr/sbin/iptables-nft", tar.TypeSymlink, "xtables-nft-multi")
	add("usr/sbin/ip6tables", tar.TypeSymlink, "xtables-nft-multi")
	for _, f := range []string{"usr/sbin/xtables-nft-multi", "usr/sbin/nft", "usr/bin/bash",
		"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/libc.so.6",
		"usr/lib/x86_64-linux-gnu/libxtables.so.12.7.0", "usr/lib/x86_64-linux-gnu/libsystemd.so.0",
		"usr/lib/x86_64-linux-gnu/xtables/libxt_comment.so"} {
		add(f, tar.TypeReg, "")
	}
	add("usr/lib/x86_64-linux-gnu/libxtables.so.12", tar.TypeSymlink, "libxtables.so.12.7.0")
	add("usr/lib/x86_64-linux-gnu/ebtables", tar.TypeDir, "")
	add("usr/lib/x86_64-linux-gnu/ebtables/libebtc.so.0", tar.TypeReg, "")
	add("usr/sbin/ebtablesd", tar.TypeReg, "")
	t.needs["usr/sbin/ebtablesd"] = []string{"libebtc.so.0", "libc.so.6"}
	t.runpaths["usr/sbin/ebtablesd"] = []string{"usr/lib/x86_64-linux-gnu/ebtables"}
	t.needs["usr/sbin/xtables-nft-multi"] = []string{"/lib64/ld-linux-x86-64.so.2", "libxtables.so.12", "libc.so.6"}
	t.needs["usr/lib/x86_64-linux-gnu/xtables/libxt_comment.so"] = []string{"libxtables.so.12"}
	t.needs["usr/sbin/nft"] = []string{"libc.so.6"}
	t.needs["usr/bin/bash"] = []string{"libc.so.6", "libsystemd.so.0"}
	return t
}

// The net tools are the patterns' matches, every symlink on the way to
// them, their ELF dependencies and the directories above: nothing else.
func TestNetToolsClosure(t *testing.T) {
	keep, err := syntheticBase("").netTools()
	if err != nil {
		t.Fatal(err)
	}
	got := "\n" + strings.Join(keep, "\n") + "\n"
	for _, want := range []string{
		"usr/sbin/iptables", "etc/alternatives/iptables", "usr/sbin/iptables-nft", "usr/sbin/xtables-nft-multi",
		"usr/sbin/ip6tables", "usr/sbin/nft", "lib64", "usr/lib64/ld-linux-x86-64.so.2",
		"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/libc.so.6",
		"usr/lib/x86_64-linux-gnu/libxtables.so.12", "usr/lib/x86_64-linux-gnu/libxtables.so.12.7.0",
		"usr/lib/x86_64-linux-gnu/xtables/libxt_comment.so", "usr/lib/x86_64-linux-gnu", "usr/sbin", "etc/alternatives",
		"usr/lib/x86_64-linux-gnu/ebtables/libebtc.so.0", // by its RUNPATH
	} {
		if !strings.Contains(got, "\n"+want+"\n") {
			t.Errorf("net tools lack %s:%s", want, got)
		}
	}
	for _, unwanted := range []string{"usr/bin/bash", "usr/lib/x86_64-linux-gnu/libsystemd.so.0", "usr/bin"} {
		if strings.Contains(got, "\n"+unwanted+"\n") {
			t.Errorf("net tools have %s, which nothing needs:%s", unwanted, got)
		}
	}
}

func TestNetToolsNeedTheirLibraries(t *testing.T) {
	_, err := syntheticBase("usr/lib/x86_64-linux-gnu/libxtables.so.12.7.0").netTools()
	if err == nil || !strings.Contains(err.Error(), "libxtables.so.12") {
		t.Fatalf("a base without libxtables: err = %v, want one naming it", err)
	}
}

func TestNetToolsNeedIptables(t *testing.T) {
	_, err := syntheticBase("usr/sbin/xtables-nft-multi").netTools()
	if err == nil || !strings.Contains(err.Error(), "usr/sbin/iptables") {
		t.Fatalf("a base without iptables: err = %v, want one naming usr/sbin/iptables", err)
	}
}
