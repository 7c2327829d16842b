package cli

import (
	"context"
	"strings"
	"testing"
)

// TestDownStartsLocalCluster: after berth server stop the app's containers
// keep running; down on the local default starts the local cluster, as up
// does, and removes the app (it said no manager answers).
func TestDownStartsLocalCluster(t *testing.T) {
	f, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	addr := closedAddr(t)
	h = newHarness(t)
	h.e.defAddr = addr
	h.envVars["XDG_STATE_HOME"] = "/state"
	spawned := false
	h.e.spawn = func(_ context.Context, _ *env, dir, hostPort string) error {
		spawned = true
		return serveFake(t, f, hostPort)
	}
	if code := h.run(t, "down"); code != 0 {
		t.Fatalf("down: exit %d: %s", code, h.errOut)
	}
	if !spawned {
		t.Fatal("down did not start the local cluster")
	}
	if _, ok := f.apps["hello"]; ok {
		t.Error("app still there")
	}
	if !strings.Contains(h.out.String(), "Removed app hello") {
		t.Errorf("stdout %q", h.out)
	}
}

func TestCountOf(t *testing.T) {
	for n, want := range map[int]string{0: "0 tasks", 1: "1 task", 2: "2 tasks"} {
		if got := countOf(n, "task", "tasks"); got != want {
			t.Errorf("countOf(%d) = %q, want %q", n, got, want)
		}
	}
}
