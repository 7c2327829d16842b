package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// TestLogsFollowScaleUp: a replica added by a scale-up is pending, then
// starting, before its agent holds it; logs -f waits until it runs,
// follows it, and neither warns nor fails.
func TestLogsFollowScaleUp(t *testing.T) {
	f, url := newFakeManager(t)
	f.apps["hello"] = &types.App{Name: "hello"}
	f.addTask("hello", "web", 1, "first\n")
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"logs", "-f", "--addr", url}, h.e) }()
	waitFor(t, func() bool { return strings.Contains(h.out.String(), "web-1  | first") })

	// The new replica: placed but not yet on its agent (no logs to read).
	task := f.addTask("hello", "web", 2, "")
	f.mu.Lock()
	delete(f.logs, task.ID)
	task.State = types.TaskStarting
	f.index++
	seen := f.listings
	f.mu.Unlock()
	// Two listings later the follower has seen the starting task.
	waitFor(t, func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.listings >= seen+2 })
	// It runs: now the agent has it.
	f.mu.Lock()
	task.State = types.TaskRunning
	f.logs[task.ID] = "second\n"
	f.index++
	f.mu.Unlock()
	waitFor(t, func() bool { return strings.Contains(h.out.String(), "web-2  | second") })
	cancel()
	if c := <-code; c != 0 || strings.Contains(h.errOut.String(), "cannot read the logs") {
		t.Errorf("exit %d, stderr %q", c, h.errOut)
	}
}

// TestLogsSkipsTasksThatNeverRan: a replica whose latest task has not run
// yet shows its previous task's output, and one with none is skipped, not
// a warning and a failed command.
func TestLogsSkipsTasksThatNeverRan(t *testing.T) {
	f, url := newFakeManager(t)
	f.apps["hello"] = &types.App{Name: "hello"}
	f.addTask("hello", "web", 1, "old run\n")
	for _, st := range []types.TaskState{types.TaskPending, types.TaskRejected} {
		task := f.addTask("hello", "web", 2, "")
		f.mu.Lock()
		delete(f.logs, task.ID)
		task.State = st
		f.mu.Unlock()
	}
	restart := f.addTask("hello", "web", 1, "")
	f.mu.Lock()
	delete(f.logs, restart.ID)
	restart.State = types.TaskAssigned
	f.mu.Unlock()
	h := newHarness(t)
	if code := h.run(t, "logs", "--addr", url); code != 0 || strings.Contains(h.errOut.String(), "cannot read") {
		t.Fatalf("exit %d, stderr %q", code, h.errOut)
	}
	if !strings.Contains(h.out.String(), "web-1  | old run") {
		t.Errorf("stdout %q, want the previous run of web-1", h.out)
	}
}
