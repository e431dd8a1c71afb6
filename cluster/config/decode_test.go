package config

import "testing"

func TestSuggest(t *testing.T) {
	accepted := []string{"role", "image", "labels", "extraMounts", "extraPortMappings", "kubeadmConfigPatchesJSON6902"}
	tests := []struct{ in, want string }{
		{"rol", "role"},
		{"imgae", "image"},
		{"extraPortMapping", "extraPortMappings"},
		{"ExtraMounts", "extraMounts"},
		{"kubeadmConfigPatchesJson6902", "kubeadmConfigPatchesJSON6902"},
		{"replicas", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := suggest(tt.in, accepted); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"role", "rol", 1}, {"flaw", "lawn", 2},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPaths(t *testing.T) {
	tests := []struct{ path, parent string }{
		{"nodes[1].extraPortMappings[0].hostPort", "nodes[1].extraPortMappings[0]"},
		{"nodes[1].extraPortMappings[0]", "nodes[1].extraPortMappings"},
		{"nodes[1]", "nodes"},
		{"nodes", ""},
		{`nodes[0].labels["example.com/zone"]`, "nodes[0].labels"},
	}
	for _, tt := range tests {
		if got := parentPath(tt.path); got != tt.parent {
			t.Errorf("parentPath(%q) = %q, want %q", tt.path, got, tt.parent)
		}
	}
	if got := childPath("nodes[0].labels", "example.com/zone"); got != `nodes[0].labels["example.com/zone"]` {
		t.Errorf("childPath quoted key = %s", got)
	}
}
