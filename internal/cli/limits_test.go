package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestUpAndScaleBeyondLimits: against a real manager started with
// --max-tasks-per-app, `berth up` and `berth scale` beyond the limit fail
// with the manager's sentence, which names the limit and the flag.
func TestUpAndScaleBeyondLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real manager")
	}
	addr := strings.TrimPrefix(closedAddr(t), "http://")
	raftAddr := strings.TrimPrefix(closedAddr(t), "http://")
	clusterAddr := strings.TrimPrefix(closedAddr(t), "http://")
	srv := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"server", "--addr", addr, "--raft-addr", raftAddr, "--cluster-addr", clusterAddr,
			"--data-dir", t.TempDir(), "--max-tasks-per-app", "3"}, srv.e)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-code:
		case <-time.After(30 * time.Second):
			t.Error("the manager did not stop within 30s")
		}
	})
	// The bootstrap prints the admin token once; every client below uses it.
	var token string
	waitWithin(t, 60*time.Second, func() bool {
		token = adminTokenIn(srv.out.String())
		return token != ""
	})
	c := api.NewClient(addr, api.WithToken(token))
	waitWithin(t, 60*time.Second, func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.Leader
	})

	url := "http://" + addr
	h := newHarness(t)
	h.envVars["BERTH_TOKEN"] = token
	h.loader.app = types.App{Name: "hello", Services: []*types.Service{{Name: "web", Mode: types.ModeReplicated, Replicas: 4, Image: "nginx"}}}
	if got := h.run(t, "up", "-d", "--addr", url); got != 1 {
		t.Fatalf("up of 4 tasks: exit %d, want 1; stderr:\n%s", got, h.errOut)
	}
	want := "services: the app would run 4 tasks, more than the limit of 3 per app (a manager's --max-tasks-per-app flag raises the limit)"
	if !strings.Contains(h.errOut.String(), want) {
		t.Errorf("up stderr:\n%s\nwant the sentence %q", h.errOut, want)
	}
	t.Logf("berth up beyond the limit:\n%s", h.errOut)

	h = newHarness(t)
	h.envVars["BERTH_TOKEN"] = token
	h.loader.app = types.App{Name: "hello", Services: []*types.Service{{Name: "web", Mode: types.ModeReplicated, Replicas: 3, Image: "nginx"}}}
	if got := h.run(t, "up", "-d", "--addr", url); got != 0 {
		t.Fatalf("up of 3 tasks: exit %d; stderr:\n%s", got, h.errOut)
	}
	h = newHarness(t)
	h.envVars["BERTH_TOKEN"] = token
	h.loader.app = types.App{Name: "hello"}
	if got := h.run(t, "scale", "web=5", "-d", "--project-name", "hello", "--addr", url); got != 1 {
		t.Fatalf("scale to 5: exit %d, want 1; stderr:\n%s", got, h.errOut)
	}
	want = "error: scale service web: services: the app would run 5 tasks, more than the limit of 3 per app (a manager's --max-tasks-per-app flag raises the limit)\n"
	if h.errOut.String() != want {
		t.Errorf("scale stderr = %q, want %q", h.errOut, want)
	}
}

// adminTokenIn finds the admin token a bootstrapping manager printed.
func adminTokenIn(out string) string {
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "BERTHADM-") {
			return f
		}
	}
	return ""
}
