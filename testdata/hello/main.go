// Command hello is the web server of the end-to-end tests: it answers every
// path with the name of the host (the pod) that served it. `hello get URL`
// fetches URL and prints the body, so tests can check pod-to-pod traffic
// from inside a pod whose image holds nothing else. Files under /data, when
// a volume is mounted there, are served under /files/. On UDP port 5001 it
// answers every datagram with the host's name, for port-mapping tests.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "get" {
		get(os.Args[2])
		return
	}
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<h1>Path %s served from host : %s</h1>\n", r.URL.Path, host)
	})
	http.Handle("/files/", http.StripPrefix("/files/", http.FileServer(http.Dir("/data"))))
	go echoUDP(host)
	log.Fatal(http.ListenAndServe(":5000", nil))
}

func echoUDP(host string) {
	conn, err := net.ListenPacket("udp", ":5001")
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 512)
	for {
		_, from, err := conn.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		conn.WriteTo([]byte(host+"\n"), from)
	}
}

func get(url string) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		log.Fatal(err)
	}
}
