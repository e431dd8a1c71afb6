package podman

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/containers/podman/v4/pkg/api/handlers"
	"github.com/containers/podman/v4/pkg/bindings/containers"
	"github.com/containers/podman/v4/pkg/errorhandling"
	dockertypes "github.com/docker/docker/api/types"
	"github.com/moby/moby/api/pkg/stdcopy"

	"github.com/kinc-dev/kinc/runtime"
)

// Exec runs a command in the node.
func (r *Runtime) Exec(ctx context.Context, name string, cmd runtime.ExecSpec) error {
	if len(cmd.Cmd) == 0 {
		return fmt.Errorf("exec in %q: empty command: %w", name, runtime.ErrInvalid)
	}
	doing := fmt.Sprintf("exec %q in %q", strings.Join(cmd.Cmd, " "), name)
	cfg := &handlers.ExecCreateConfig{ExecConfig: dockertypes.ExecConfig{
		User: cmd.User, Env: runtime.EnvList(cmd.Env), Cmd: cmd.Cmd,
		AttachStdin: cmd.Stdin != nil, AttachStdout: true, AttachStderr: true,
	}}
	id, err := containers.ExecCreate(r.ctx(ctx), name, cfg)
	if err != nil {
		return r.mapErr(err, doing)
	}
	defer func() { _ = containers.ExecRemove(r.ctx(context.WithoutCancel(ctx)), id, nil) }()
	out := runtime.NewExecOutput(cmd)
	if err := r.execAttach(ctx, id, cmd.Stdin, out.Stdout(), out.Stderr()); err != nil {
		return r.mapErr(err, doing)
	}
	session, err := containers.ExecInspect(r.ctx(ctx), id, nil)
	if err != nil {
		return r.mapErr(err, doing)
	}
	return out.Result(name, cmd.Cmd, session.ExitCode)
}

// execAttach starts an exec session and streams its input and output. It
// speaks HTTP on its own connection instead of using
// containers.ExecStartAndAttach, which reads the output from the raw socket
// after the HTTP client has buffered past the headers, and so loses the
// output of commands that end quickly; it also swaps the shared
// connection's transport, which races between concurrent execs.
func (r *Runtime) execAttach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer) error {
	conn, err := r.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	body, _ := json.Marshal(map[string]bool{"Detach": false, "Tty": false})
	req, err := http.NewRequest(http.MethodPost, "http://d/v4.0.0/libpod/exec/"+url.PathEscape(id)+"/start", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		return fmt.Errorf("starting exec session: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fmt.Errorf("starting exec session: %w", err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		em := &errorhandling.ErrorModel{ResponseCode: resp.StatusCode}
		data, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(data, em) != nil || em.Message == "" {
			em.Message = strings.TrimSpace(string(data))
		}
		return em
	}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(conn, stdin)
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite() // EOF for the command
			}
		}()
	}
	// The rest of the connection, starting with what br has buffered, is
	// the multiplexed output.
	if _, err := stdcopy.StdCopy(stdout, stderr, br); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading exec output: %w", err)
	}
	return ctx.Err()
}

// dial opens a connection to the service the way the bindings do.
func (r *Runtime) dial(ctx context.Context) (net.Conn, error) {
	u, err := url.Parse(r.uri)
	if err != nil {
		return nil, fmt.Errorf("podman URI %q: %w", r.uri, err)
	}
	var d net.Dialer
	switch u.Scheme {
	case "unix":
		path := u.Path
		if u.Host != "" { // unix://relative/path
			path = u.Host + u.Path
		}
		return d.DialContext(ctx, "unix", path)
	case "tcp":
		return d.DialContext(ctx, "tcp", u.Host)
	default:
		return nil, fmt.Errorf("exec over %s connections: %w", u.Scheme, runtime.ErrNotSupported)
	}
}
