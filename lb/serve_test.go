package lb

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// apiServer stands in for a kube-apiserver: TLS, /healthz, and a page
// that names it.
func apiServer(t *testing.T, name string) (host string, port int) {
	t.Helper()
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok")
			return
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	host, p, _ := net.SplitHostPort(u.Host)
	port, _ = strconv.Atoi(p)
	return host, port
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestHaproxyBalancesAndReloads runs the real haproxy on a rendered config
// in master-worker mode, as the load balancer's unit does: requests reach
// every backend, by IP and by name, and a reload (SIGUSR2 to the master)
// switches backends without breaking a connection opened before it.
func TestHaproxyBalancesAndReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs haproxy")
	}
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (apt-get install haproxy)")
	}
	ipA, portA := apiServer(t, "a")
	_, portB := apiServer(t, "b")
	port := freePort(t)
	backends := []Backend{
		{Name: "a", Address: ipA, Port: portA},
		{Name: "b", Address: "localhost", Port: portB}, // resolved by name
	}
	cfgPath := filepath.Join(t.TempDir(), "haproxy.cfg")
	write := func(bs []Backend) {
		cfg, err := Config(Input{BindPort: port, Backends: bs})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(backends)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, haproxy, "-W", "-db", "-f", cfgPath)
	logPath := filepath.Join(t.TempDir(), "haproxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("haproxy said:\n%s", out)
		}
	})

	lbURL := fmt.Sprintf("https://127.0.0.1:%d/", port)
	newClient := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		}}
	}
	get := func(c *http.Client) (string, error) {
		resp, err := c.Get(lbURL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	// Until both answer, by round robin.
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < 2 && time.Now().Before(deadline) {
		if body, err := get(newClient()); err == nil {
			seen[body] = true
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("through the load balancer reached %v, want both a and b", seen)
	}

	// A kept-alive connection opened before the reload.
	keep := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxConnsPerHost: 1,
	}}
	before, err := get(keep)
	if err != nil {
		t.Fatal(err)
	}

	write(backends[1:])
	if err := cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	// New connections reach only b once the new workers serve.
	deadline = time.Now().Add(30 * time.Second)
	onlyB := 0
	for onlyB < 6 && time.Now().Before(deadline) {
		body, err := get(newClient())
		switch {
		case err != nil:
			t.Fatalf("a request failed during the reload: %v", err)
		case body == "b":
			onlyB++
		default:
			onlyB = 0
			time.Sleep(200 * time.Millisecond)
		}
	}
	if onlyB < 6 {
		t.Fatal("after the reload requests still reach a")
	}
	// The old connection still works and still talks to its old server.
	after, err := get(keep)
	if err != nil {
		t.Fatalf("the connection opened before the reload broke: %v", err)
	}
	if after != before {
		t.Errorf("the old connection moved from %q to %q", before, after)
	}
}
