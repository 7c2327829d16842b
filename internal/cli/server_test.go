package cli

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/credfile"
)

func TestParseLabels(t *testing.T) {
	got, err := parseLabels([]string{"zone=a", "disk=", "k=v=w"})
	if err != nil || len(got) != 3 || got["zone"] != "a" || got["disk"] != "" || got["k"] != "v=w" {
		t.Errorf("parseLabels = %v, %v", got, err)
	}
	for _, bad := range []string{"zone", "=a"} {
		if _, err := parseLabels([]string{bad}); err == nil || !strings.Contains(err.Error(), `invalid label "`+bad+`"`) {
			t.Errorf("parseLabels(%q) err = %v", bad, err)
		}
	}
}

func TestListenAddr(t *testing.T) {
	tests := map[string]string{
		"http://127.0.0.1:7700": "127.0.0.1:7700",
		"127.0.0.1:7700":        "127.0.0.1:7700",
		"localhost:80":          "localhost:80",
		"http://[::1]:7700/":    "[::1]:7700",
	}
	for in, want := range tests {
		if got, err := listenAddr(in); err != nil || got != want {
			t.Errorf("listenAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestStateDir(t *testing.T) {
	e := &env{getenv: func(k string) string { return map[string]string{"HOME": "/home/me"}[k] }}
	if got, _ := e.stateDir("local"); got != "/home/me/.local/state/berth/local" {
		t.Errorf("stateDir = %q", got)
	}
	e.getenv = func(string) string { return "" }
	if _, err := e.stateDir("local"); err == nil || !strings.Contains(err.Error(), "pass --data-dir") {
		t.Errorf("stateDir without HOME: err = %v", err)
	}
}

func TestWaitForManager(t *testing.T) {
	_, url := newFakeManager(t)
	ctx := context.Background()
	if err := waitForManager(ctx, func() *api.Client { return api.NewClient(url) }, nil, 10*time.Second); err != nil {
		t.Errorf("fake leader: %v", err)
	}
	exited := make(chan error, 1)
	exited <- os.ErrProcessDone
	closed := closedAddr(t)
	err := waitForManager(ctx, func() *api.Client { return api.NewClient(closed) }, exited, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "berth server exited") {
		t.Errorf("exited server: err = %v", err)
	}
}

func TestLogTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "berth.log")
	if err := os.WriteFile(p, []byte("a\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "last lines of " + p + ":\n  b\n  c\n"
	if got := logTail(p, 2); got != want {
		t.Errorf("logTail = %q, want %q", got, want)
	}
}

// TestServerDev runs `berth server --dev` in-process: the manager leads,
// its agent registers, the API refuses a request without a credential
// (loopback proves nothing: every local user can reach it) and takes the
// admin token the dev cluster left, 0600, where this user's CLI finds it;
// cancelling the context stops both cleanly and removes the temporary data
// directory.
func TestServerDev(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real manager and agent")
	}
	addr := strings.TrimPrefix(closedAddr(t), "http://")
	raftAddr := strings.TrimPrefix(closedAddr(t), "http://")
	clusterAddr := strings.TrimPrefix(closedAddr(t), "http://")
	t.Setenv("TMPDIR", t.TempDir())
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"server", "--dev", "--addr", addr, "--raft-addr", raftAddr, "--cluster-addr", clusterAddr}, h.e)
	}()
	var c *api.Client
	waitWithin(t, 60*time.Second, func() bool {
		c = h.e.localClient(addr)()
		st, err := c.Status(ctx)
		if err != nil || !st.Leader {
			return false
		}
		nodes, err := c.ListNodes(ctx)
		return err == nil && len(nodes) == 1
	})
	var ae *api.Error
	if _, err := api.NewClient(addr).ListApps(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("a request without a credential: %v, want 401", err)
	}
	if _, err := api.NewClient(addr).Status(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("status without a credential: %v, want 401", err)
	}
	path, _ := credfile.Path(h.e.getenv, addr)
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("credential file %s: %v (%v), want mode 0600", path, st, err)
	}
	// The CLI finds it by the address alone, as a user's does.
	if got := h.run(t, "--addr", addr, "node", "ls"); got != 0 {
		t.Errorf("node ls with the stored credential: exit %d; stderr:\n%s", got, h.errOut)
	}
	cancel()
	select {
	case got := <-code:
		if got != 0 {
			t.Errorf("exit %d; stderr:\n%s", got, h.errOut)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server --dev did not stop within 30s of its context ending")
	}
	left, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "berth-dev-*"))
	if len(left) != 0 {
		t.Errorf("temporary data left behind: %v", left)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stopped dev cluster left its token in %s (%v)", path, err)
	}
}

// TestServerDevRestartMintsAFreshToken: a dev cluster restarted on its data
// (as the local cluster is) makes a new admin token and leaves it for the
// CLI; the one it left before stops working.
func TestServerDevRestartMintsAFreshToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real manager and agent, twice")
	}
	h := newHarness(t)
	dataDir := t.TempDir()
	addr := strings.TrimPrefix(closedAddr(t), "http://")
	raftAddr := strings.TrimPrefix(closedAddr(t), "http://")
	clusterAddr := strings.TrimPrefix(closedAddr(t), "http://")
	start := func() (stop func(), tok string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		code := make(chan int, 1)
		go func() {
			code <- run(ctx, []string{"server", "--dev", "--data-dir", dataDir, "--addr", addr, "--raft-addr", raftAddr, "--cluster-addr", clusterAddr}, h.e)
		}()
		waitWithin(t, 60*time.Second, func() bool {
			st, err := h.e.localClient(addr)().Status(ctx)
			return err == nil && st.Leader
		})
		tok, _ = credfile.Load(h.e.getenv, addr)
		return func() {
			cancel()
			if got := <-code; got != 0 {
				t.Errorf("exit %d; stderr:\n%s", got, h.errOut)
			}
		}, tok
	}
	stop, first := start()
	stop()
	// As the local cluster's spawner does: the old token must not pass
	// for the new one while the restart begins.
	if err := credfile.Remove(h.e.getenv, addr); err != nil {
		t.Fatal(err)
	}
	stop, second := start()
	defer stop()
	ctx := context.Background()
	var ae *api.Error
	if _, err := api.NewClient(addr, api.WithToken(first)).ListApps(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("the token of the first run after the restart: %v, want 401", err)
	}
	if _, err := api.NewClient(addr, api.WithToken(second)).ListApps(ctx); err != nil || first == second {
		t.Errorf("the token of the second run (%v, same as the first: %v)", err, first == second)
	}
}
