package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
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
	if err := waitForManager(ctx, api.NewClient(url), nil, 10*time.Second); err != nil {
		t.Errorf("fake leader: %v", err)
	}
	exited := make(chan error, 1)
	exited <- os.ErrProcessDone
	err := waitForManager(ctx, api.NewClient(closedAddr(t)), exited, 10*time.Second)
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
// its agent registers, and cancelling the context stops both cleanly and
// removes the temporary data directory.
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
	c := api.NewClient(addr)
	waitWithin(t, 60*time.Second, func() bool {
		st, err := c.Status(ctx)
		if err != nil || !st.Leader {
			return false
		}
		nodes, err := c.ListNodes(ctx)
		return err == nil && len(nodes) == 1
	})
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
}
