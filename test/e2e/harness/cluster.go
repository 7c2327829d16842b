package harness

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/credfile"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/testkit"
)

// Deadlines of a cluster's process. Generous: the machine may have two
// cores busy starting containers.
const (
	serverStartTimeout = 60 * time.Second
	serverStopTimeout  = 30 * time.Second
)

// Cluster is one `berth server --dev` process (manager and agent) with its
// own data directory and ports, driven through the berth CLI. Methods that
// can fail take the testing.TB to fail: the test or subtest calling them.
type Cluster struct {
	// Addr is the manager's API, "http://127.0.0.1:PORT".
	Addr string
	// DataDir is the server's data directory; the CLI's HOME is inside it.
	DataDir string

	bin     string
	logPath string
	// pool is the cluster's overlay address pool (testPool).
	pool   netip.Prefix
	proc   *exec.Cmd
	exited chan struct{} // closed once proc has been reaped
}

// StartCluster starts a dev server of the berth binary bin for tb, waits
// until it leads and its node is ready, and stops it when tb ends (showing
// the end of its log if tb failed).
func StartCluster(tb testing.TB, bin string) *Cluster {
	tb.Helper()
	c := &Cluster{
		Addr:    "http://127.0.0.1:" + strconv.Itoa(freePortPair(tb)),
		DataDir: tb.TempDir(),
		bin:     bin,
		pool:    testPool(tb),
	}
	tb.Cleanup(func() { DropPoolRoute(c.pool) }) // registered first: runs after the server stops
	c.logPath = filepath.Join(c.DataDir, "server.log")
	c.start(tb)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("end of the server log %s:\n%s", c.logPath, Tail(c.logPath, 80))
		}
		c.Stop(tb, syscall.SIGTERM)
	})
	return c
}

// Pid is the server process's ID (for a benchmark to read its CPU time).
func (c *Cluster) Pid() int { return c.proc.Process.Pid }

// start runs the server process and waits until it is usable.
func (c *Cluster) start(tb testing.TB) {
	tb.Helper()
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("open the server log: %v", err)
	}
	defer logFile.Close()
	host := c.Addr[len("http://"):]
	// The token of an earlier run works until the new run replaces it:
	// gone, waitReady cannot mistake it for the new one.
	if err := credfile.Remove(credfile.EnvLookup(IsolatedEnv(c.DataDir)), host); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(c.bin, "server", "--dev", "--addr", host, "--data-dir", c.DataDir, "--dns-upstream", UpstreamDNS(tb),
		"--address-pool", c.pool.String())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = IsolatedEnv(c.DataDir)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start berth server: %v", err)
	}
	c.proc = cmd
	exited := make(chan struct{})
	c.exited = exited
	// The goroutine only reaps the process and ends with it; Stop waits
	// for it.
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), serverStartTimeout)
	defer cancel()
	if err := c.waitReady(ctx); err != nil {
		tb.Fatalf("berth server at %s is not ready: %v\n%s", c.Addr, err, Tail(c.logPath, 40))
	}
}

// waitReady waits until the manager leads and the dev server's own agent
// has registered as a ready node, so a deploy right after can be placed.
func (c *Cluster) waitReady(ctx context.Context) error {
	ready := func() bool {
		// The server leaves its admin token once it leads (a fresh one on
		// each start): look again each time.
		client := c.Client()
		st, err := client.Status(ctx)
		if err != nil || !st.Leader {
			return false
		}
		nodes, err := client.ListNodes(ctx)
		if err != nil {
			return false
		}
		for _, n := range nodes {
			if n.Status == types.NodeReady {
				return true
			}
		}
		return false
	}
	for !ready() {
		select {
		case <-c.exited:
			return errExited
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// Client is an API client of the cluster with the admin token it left for
// the CLI, which finds it the same way (same HOME).
func (c *Cluster) Client() *api.Client { return LocalClient(c.DataDir, c.Addr) }

// Stop sends sig to the server and waits until it has exited; SIGKILL
// follows if it does not exit in time. Stopping a stopped cluster does
// nothing.
func (c *Cluster) Stop(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if c.proc == nil {
		return
	}
	_ = c.proc.Process.Signal(sig)
	select {
	case <-c.exited:
	case <-time.After(serverStopTimeout):
		tb.Errorf("berth server ignored %v for %s; killing it", sig, serverStopTimeout)
		_ = c.proc.Process.Kill()
		<-c.exited
	}
	c.proc = nil
}

// Restart stops the server with sig and starts it again on the same data
// directory and address.
func (c *Cluster) Restart(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	c.Stop(tb, sig)
	c.start(tb)
}

// Run runs the berth CLI against this cluster (--addr is added) in dir.
func (c *Cluster) Run(tb testing.TB, dir string, args ...string) Result {
	tb.Helper()
	return c.RunEnv(tb, dir, nil, args...)
}

// RunEnv is Run with extra environment variables ("KEY=value").
func (c *Cluster) RunEnv(tb testing.TB, dir string, env []string, args ...string) Result {
	tb.Helper()
	r := RunCLI(tb, c.bin, dir, c.DataDir, env, append([]string{"--addr", c.Addr}, args...)...)
	r.Args = args
	return r
}

// MustRun is Run that fails the test unless the command exits 0.
func (c *Cluster) MustRun(tb testing.TB, dir string, args ...string) Result {
	tb.Helper()
	r := c.Run(tb, dir, args...)
	if r.Code != 0 {
		tb.Fatalf("%s", r)
	}
	return r
}

// Log returns the end of the server's log, for failure messages.
func (c *Cluster) Log(lines int) string { return Tail(c.logPath, lines) }

// freePortPair returns a port p such that p, p+1 and p+2 were free: the
// server listens on p and, by default, on p+1 for Raft and p+2 for agents.
func freePortPair(tb testing.TB) int {
	tb.Helper()
	return testkit.FreePorts(tb, 3) // the API's, Raft's (+1) and the cluster port (+2)
}
