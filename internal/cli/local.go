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
	return c, nil
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
	if err := waitForManager(ctx, api.NewClient(addr), exited, localStartTimeout); err != nil {
		return fmt.Errorf("the local cluster did not start: %w\n%s", err, logTail(logPath, 20))
	}
	return nil
}

// waitForManager polls the manager's status until it answers as the
// leader (before that it refuses writes), the process exits, or the
// deadline passes.
func waitForManager(ctx context.Context, c *api.Client, exited <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
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
