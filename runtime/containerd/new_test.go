package containerd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/errdefs"

	"github.com/kinc-dev/kinc/runtime"
)

// An unreachable daemon is ErrUnavailable, names the socket, and is
// reported at once rather than after the dial timeout.
func TestNewUnavailable(t *testing.T) {
	dir := t.TempDir()
	dead := filepath.Join(dir, "dead.sock")
	l, err := net.Listen("unix", dead)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the file stays, nobody answers
	for _, addr := range []string{filepath.Join(dir, "missing.sock"), dead} {
		t.Run(filepath.Base(addr), func(t *testing.T) {
			start := time.Now()
			_, err := New(context.Background(), WithAddress(addr), WithStateDir(t.TempDir()))
			if !errors.Is(err, runtime.ErrUnavailable) {
				t.Fatalf("New(%s) = %v, want ErrUnavailable", addr, err)
			}
			if !strings.Contains(err.Error(), addr) {
				t.Errorf("error %q does not name the socket", err)
			}
			if took := time.Since(start); took > connectTimeout {
				t.Errorf("New took %s to give up", took)
			}
		})
	}
}

func TestWithNamespaceRejectsBadNames(t *testing.T) {
	if err := WithNamespace("bad/name")(&options{}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("WithNamespace(bad/name) = %v, want ErrInvalid", err)
	}
}

func TestMapErr(t *testing.T) {
	tests := []struct {
		in   error
		want error
	}{
		{errdefsNotFound(), runtime.ErrNotFound},
		{errdefsAlreadyExists(), runtime.ErrAlreadyExists},
		{errdefsUnavailable(), runtime.ErrUnavailable},
	}
	for _, tt := range tests {
		got := mapErr(tt.in)
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.in) {
			t.Errorf("mapErr(%v) = %v, want it to be both %v and the original", tt.in, got, tt.want)
		}
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}

func errdefsNotFound() error      { return fmt.Errorf("container x: %w", errdefs.ErrNotFound) }
func errdefsAlreadyExists() error { return fmt.Errorf("container x: %w", errdefs.ErrAlreadyExists) }
func errdefsUnavailable() error   { return fmt.Errorf("dial: %w", errdefs.ErrUnavailable) }
