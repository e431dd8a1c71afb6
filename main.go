// Command kinc creates local Kubernetes clusters whose nodes are containers,
// on Podman, Docker or containerd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kinc-dev/kinc/cli"
)

func main() {
	// A cancelled context (Ctrl-C) lets long operations roll back what they made.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
