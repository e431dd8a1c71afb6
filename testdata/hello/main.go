// Command hello is the web server of the end-to-end test: it answers every
// path with the name of the host (the pod) that served it.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "<h1>Path %s served from host : %s</h1>\n", r.URL.Path, host)
	})
	log.Fatal(http.ListenAndServe(":5000", nil))
}
