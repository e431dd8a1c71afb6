package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigFrom(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		want      []string // substrings of the JSON
		err       string
	}{
		{"ipv4", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
			[]string{`"subnet": "10.244.1.0/24"`, `"gateway": "10.244.1.1"`, `"mtu": 1450`, `"dst": "0.0.0.0/0"`, `"type": "portmap"`}, ""},
		{"ipv6", "FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\n",
			[]string{`"subnet": "fd00:10:244:1::/64"`, `"gateway": "fd00:10:244:1::1"`, `"dst": "::/0"`}, ""},
		{"dual", "FLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\n",
			[]string{`"subnet": "10.244.1.0/24"`, `"subnet": "fd00:10:244:1::/64"`, `"dst": "0.0.0.0/0"`, `"dst": "::/0"`}, ""},
		{"no subnet yet", "FLANNEL_MTU=1450\n", nil, "FLANNEL_SUBNET"},
		{"bad mtu", "FLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=x\n", nil, "FLANNEL_MTU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "subnet.env")
			os.WriteFile(p, []byte(tc.env), 0o644)
			conf, err := configFrom(p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]any
			if err := json.Unmarshal(conf, &v); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(conf), w) {
					t.Errorf("config lacks %s:\n%s", w, conf)
				}
			}
		})
	}
}

func TestWriteAtomically(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "net.d", "10-kinc.conflist")
	if err := writeAtomically(p, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 || entries[0].Name() != "10-kinc.conflist" {
		t.Errorf("net.d holds %v, want only the config", entries)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
}
