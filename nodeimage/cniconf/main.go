// Command cniconf writes a node's CNI config from what flanneld found for
// the node (/run/flannel/subnet.env), and keeps it current. It stands in
// for flannel's own CNI plugin, which the Go module proxy does not serve:
// pods get a plain bridge with host-local addresses from the node's
// subnet, and flanneld routes between the nodes' subnets.
//
// It is built into kinc's flannel image by nodeimage (embedded as source
// and compiled with gobuild), so it has no dependencies beyond the
// standard library.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	subnetFile := flag.String("subnet-file", "/run/flannel/subnet.env", "flanneld's subnet file")
	confFile := flag.String("conf", "/etc/cni/net.d/10-kinc.conflist", "CNI config to write")
	// Often: the node turns Ready as soon as the config exists.
	every := flag.Duration("every", time.Second, "how often to look for changes")
	once := flag.Bool("once", false, "write the config once and exit")
	flag.Parse()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	var last []byte
	for {
		conf, err := configFrom(*subnetFile)
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "waiting for flanneld: %v\n", err)
		case !bytes.Equal(conf, last):
			if err := writeAtomically(*confFile, conf); err != nil {
				fmt.Fprintf(os.Stderr, "writing %s: %v\n", *confFile, err)
				break
			}
			fmt.Printf("wrote %s\n", *confFile)
			last = conf
		}
		if *once && last != nil {
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(*every):
		}
	}
}

// configFrom renders the conflist for the subnets flanneld leased to this
// node, e.g. FLANNEL_SUBNET=10.244.1.1/24, FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64
// (either or both) and FLANNEL_MTU=1450.
func configFrom(subnetFile string) ([]byte, error) {
	env, err := readEnv(subnetFile)
	if err != nil {
		return nil, err
	}
	mtu, err := strconv.Atoi(env["FLANNEL_MTU"])
	if err != nil {
		return nil, fmt.Errorf("%s: FLANNEL_MTU: %w", subnetFile, err)
	}
	type obj = map[string]any
	var ranges [][]obj
	var routes []obj
	for _, key := range []string{"FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"} {
		if env[key] == "" {
			continue
		}
		gw, subnet, err := net.ParseCIDR(env[key])
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", subnetFile, key, err)
		}
		ranges = append(ranges, []obj{{"subnet": subnet.String(), "gateway": gw.String()}})
		dst := "0.0.0.0/0"
		if gw.To4() == nil {
			dst = "::/0"
		}
		routes = append(routes, obj{"dst": dst})
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("%s: no FLANNEL_SUBNET or FLANNEL_IPV6_SUBNET yet", subnetFile)
	}
	conf := obj{
		"cniVersion": "0.4.0",
		"name":       "kinc",
		"plugins": []obj{
			{
				"type":        "bridge",
				"bridge":      "cni0",
				"isGateway":   true,
				"ipMasq":      false, // flanneld masquerades what leaves the cluster
				"hairpinMode": true,
				"mtu":         mtu,
				"ipam": obj{
					"type":   "host-local",
					"ranges": ranges,
					"routes": routes,
				},
			},
			{"type": "portmap", "capabilities": obj{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func readEnv(p string) (map[string]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(s.Text()), "="); ok {
			env[k] = v
		}
	}
	return env, s.Err()
}

// writeAtomically renames a complete file into place: the runtime may
// read the directory at any moment.
func writeAtomically(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".kinc-cni-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
