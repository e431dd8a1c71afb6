package cluster

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// TestRenderCNI renders the node image's flannel manifest for each IP
// family: every document parses, flanneld's net-conf.json is valid JSON
// enabling exactly the cluster's families, and flanneld is pointed at the
// API directly.
func TestRenderCNI(t *testing.T) {
	raw, err := os.ReadFile("../nodeimage/manifests/default-cni.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.ReplaceAll(string(raw), "@FLANNEL_IMAGE@", "docker.io/kinc/flannel:test")) // as the image build does
	for _, tc := range []struct {
		name   string
		v      cniValues
		v4, v6 bool
	}{
		{"ipv4", cniValues{PodSubnet: "10.244.0.0/16", PodSubnetV4: "10.244.0.0/16"}, true, false},
		{"ipv6", cniValues{PodSubnet: "fd00:10:244::/56", PodSubnetV6: "fd00:10:244::/56"}, false, true},
		{"dual", cniValues{PodSubnet: "10.244.0.0/16,fd00:10:244::/56", PodSubnetV4: "10.244.0.0/16", PodSubnetV6: "fd00:10:244::/56"}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.v.APIServerHost, tc.v.APIServerPort = "c-control-plane", 6443
			out, err := renderCNI(raw, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			var netConf map[string]any
			for _, doc := range strings.Split(string(out), "\n---\n") {
				n, err := yaml.Parse(doc)
				if err != nil {
					t.Fatalf("rendered manifest does not parse: %v\n%s", err, doc)
				}
				if n.GetKind() != "ConfigMap" {
					continue
				}
				data := n.GetDataMap()["net-conf.json"]
				if err := json.Unmarshal([]byte(data), &netConf); err != nil {
					t.Fatalf("net-conf.json is not JSON: %v\n%s", err, data)
				}
			}
			if netConf["EnableIPv4"] != tc.v4 || netConf["EnableIPv6"] != tc.v6 {
				t.Errorf("net-conf.json %v, want EnableIPv4 %v EnableIPv6 %v", netConf, tc.v4, tc.v6)
			}
			if tc.v4 && netConf["Network"] != tc.v.PodSubnetV4 || tc.v6 && netConf["IPv6Network"] != tc.v.PodSubnetV6 {
				t.Errorf("net-conf.json %v lacks the pod subnets", netConf)
			}
			if !strings.Contains(string(out), "value: \"c-control-plane\"") {
				t.Errorf("flanneld is not pointed at the API:\n%s", out)
			}
		})
	}
	if _, err := renderCNI([]byte("{{ .NoSuchField }}"), cniValues{}); err == nil {
		t.Error("an unknown template field rendered without error")
	}
}
