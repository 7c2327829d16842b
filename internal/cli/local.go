package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/credfile"
	"github.com/berth-dev/berth/internal/server"
)

// localStartTimeout bounds the wait for a freshly started local cluster.
const localStartTimeout = 60 * time.Second

// ensureManager makes sure a manager answers. Only when the user did not
// choose the address (no --addr, no BERTH_ADDR, no current context) and
// nothing listens at the default one does berth start a local one-node
// cluster on its own: the embedded default, so `berth up` works on a
// laptop with nothing set up.
func (e *env) ensureManager(ctx context.Context) (*api.Client, error) {
	c := e.client()
	_, err := c.Status(ctx)
	switch {
	case err == nil:
		return c, nil
	case !isConnRefused(err):
		return nil, fmt.Errorf("ask the manager at %s for its status: %w", e.global.addr, err)
	case e.global.addrExplicit:
		return nil, &errNoManager{addr: e.global.addr, context: e.global.contextName, err: err}
	}
	dir, err := e.localClusterDir()
	if err != nil {
		return nil, err
	}
	hostPort, err := listenAddr(e.global.addr)
	if err != nil {
		return nil, err
	}
	if err := e.spawn(ctx, e, dir, hostPort); err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stdout, "Started a local one-node cluster (data and log in %s); stop it with: berth server stop\n", dir)
	// The new cluster left its admin token for us; later calls use it.
	if err := e.global.addCredential(e); err != nil {
		return nil, err
	}
	return e.client(), nil
}

// localClusterDir is where the embedded cluster keeps its state, so that it
// survives restarts: $XDG_STATE_HOME/berth/local or ~/.local/state/berth/local.
func (e *env) localClusterDir() (string, error) {
	return e.stateDir("local")
}

func (e *env) stateDir(name string) (string, error) {
	if x := e.getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "berth", name), nil
	}
	home := e.getenv("HOME")
	if home == "" {
		return "", errors.New("cannot choose a data directory: neither XDG_STATE_HOME nor HOME is set; pass --data-dir")
	}
	return filepath.Join(home, ".local", "state", "berth", name), nil
}

// listenAddr turns a manager address ("http://127.0.0.1:7700") into the
// host:port a server listens on.
func listenAddr(addr string) (string, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		u, err = url.Parse("http://" + addr)
	}
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("manager address %q is not host:port or http://host:port", addr)
	}
	return u.Host, nil
}

// spawnLocalCluster starts `berth server --dev` detached from this process
// (own session, no terminal), logging to dir/berth.log, and waits until it
// answers. On failure it shows the end of the log, where the cause is.
func spawnLocalCluster(ctx context.Context, e *env, dir, addr string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the local cluster's directory: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the berth binary to start a local cluster: %w", err)
	}
	logPath := filepath.Join(dir, "berth.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the local cluster's log: %w", err)
	}
	defer logFile.Close()
	// Nothing listens at addr, so a token left for it is an earlier run's:
	// gone, it cannot pass for the new one while that starts.
	if err := credfile.Remove(e.getenv, addr); err != nil {
		return err
	}
	cmd := exec.Command(self, "server", "--dev", "--data-dir", dir, "--addr", addr)
	cmd.Stdout, cmd.Stderr = logFile, logFile // stdin stays /dev/null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a local cluster: %w", err)
	}
	// The server outlives this process by design. The goroutine only reaps
	// it should it die while we still wait, and ends with the process.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitForManager(ctx, e.localClient(addr), exited, localStartTimeout); err != nil {
		return fmt.Errorf("the local cluster did not start: %w\n%s", err, logTail(logPath, 20))
	}
	return nil
}

// localClient returns, at each call, a client of the manager at addr with
// the credential its dev cluster has left by then (it writes it once it
// leads, a fresh one on each start).
func (e *env) localClient(addr string) func() *api.Client {
	return func() *api.Client {
		tok, _ := e.localCredential(addr)
		if tok == "" {
			return api.NewClient(addr)
		}
		return api.NewClient(addr, api.WithToken(tok))
	}
}

// waitForManager polls the manager's status until it answers as the
// leader (before that it refuses writes), the process exits, or the
// deadline passes. client is asked for a client at each poll, as the
// credential may appear meanwhile.
func waitForManager(ctx context.Context, client func() *api.Client, exited <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var c *api.Client
	for {
		c = client()
		if st, err := c.Status(ctx); err == nil && st.Leader {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("berth server exited (%v)", err)
		case <-ctx.Done():
			return fmt.Errorf("no answer at %s within %s", c.Addr(), timeout)
		case <-tick.C:
		}
	}
}

// logTail returns the last n lines of a log file, indented, for an error.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	lines = lines[max(0, len(lines)-n):]
	var out bytes.Buffer
	fmt.Fprintf(&out, "last lines of %s:\n", path)
	for _, l := range lines {
		out.WriteString("  ")
		out.Write(l)
		out.WriteByte('\n')
	}
	return out.String()
}

// saveDevCredential writes the dev cluster's admin token where the CLI of
// this user finds it for the manager's address (see credfile). A bootstrap
// run has a token; a restart makes a fresh one, as the old one is kept only
// hashed. The API answers nobody without it.
func (e *env) saveDevCredential(ctx context.Context, srv *server.Server) (string, error) {
	var saved string
	save := func(tok string) error {
		if err := credfile.Save(e.getenv, srv.Addr(), tok); err != nil {
			return fmt.Errorf("%w; without it the CLI cannot use the dev cluster", err)
		}
		saved = tok
		return nil
	}
	if tok := srv.AdminToken(); tok != "" {
		if err := save(tok); err != nil {
			return "", err
		}
	} else {
		mctx, cancel := context.WithTimeout(ctx, devTokenTimeout)
		defer cancel()
		if err := srv.ReplaceAdminToken(mctx, save); err != nil {
			return "", fmt.Errorf("make the dev cluster's admin token: %w", err)
		}
	}
	path, _ := credfile.Path(e.getenv, srv.Addr())
	fmt.Fprintf(e.stderr, "The dev cluster's admin token is in %s (readable by you only); the berth CLI uses it for %s\n", path, srv.Addr())
	return saved, nil
}

// dropDevCredential removes the token a dev cluster left, unless another
// one has been written over it since.
func (e *env) dropDevCredential(addr, tok string) {
	if cur, err := credfile.Load(e.getenv, addr); err == nil && cur == tok {
		_ = credfile.Remove(e.getenv, addr)
	}
}
