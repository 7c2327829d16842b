package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// blockingCommitter records each command and holds it until released.
type blockingCommitter struct {
	mu      sync.Mutex
	cmds    []state.Command
	arrived chan struct{}
	release chan error
}

func (c *blockingCommitter) commit(_ context.Context, cmd state.Command) (any, error) {
	c.mu.Lock()
	c.cmds = append(c.cmds, cmd)
	c.mu.Unlock()
	c.arrived <- struct{}{}
	return nil, <-c.release
}

func report(node string, statuses int) state.TaskStatusUpdate {
	u := state.TaskStatusUpdate{NodeID: node}
	for i := range statuses {
		u.Statuses = append(u.Statuses, types.TaskStatus{TaskID: fmt.Sprintf("%s-%d", node, i), State: types.TaskRunning})
	}
	return u
}

// TestReportsCommitInGroups: reports that arrive while two entries are in
// flight go out together in the next one, and every caller gets its
// entry's error.
func TestReportsCommitInGroups(t *testing.T) {
	c := &blockingCommitter{arrived: make(chan struct{}, 16), release: make(chan error)}
	b := &reportBatcher{commit: c.commit}
	errs := make(chan error, 16)
	submit := func(node string) { go func() { errs <- b.submit(context.Background(), report(node, 1)) }() }
	wait := func(what string) {
		t.Helper()
		select {
		case <-c.arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("no commit of %s", what)
		}
	}

	submit("a")
	wait("a")
	submit("b")
	wait("b") // two in flight
	for i, n := range []string{"c", "d", "e"} {
		submit(n)
		waitQueued(t, b, i+1) // one at a time: the batch keeps arrival order
	}
	c.release <- nil // a commits; c, d, e go out as one entry
	wait("c, d and e")
	c.release <- nil // b
	boom := errors.New("not the leader")
	c.release <- boom // the batch
	var failed int
	for range 5 {
		if err := <-errs; errors.Is(err, boom) {
			failed++
		} else if err != nil {
			t.Fatalf("submit: %v", err)
		}
	}
	if failed != 3 {
		t.Errorf("%d callers got the batch's error, want 3", failed)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cmds) != 3 {
		t.Fatalf("%d commits, want 3", len(c.cmds))
	}
	for i, want := range []string{"a", "b"} {
		if u, ok := c.cmds[i].(state.TaskStatusUpdate); !ok || u.NodeID != want {
			t.Errorf("commit %d = %#v, want %s's report alone", i, c.cmds[i], want)
		}
	}
	batch, ok := c.cmds[2].(*state.TaskStatusBatch)
	if !ok || len(batch.Reports) != 3 {
		t.Fatalf("commit 3 = %#v, want a batch of 3", c.cmds[2])
	}
	for i, want := range []string{"c", "d", "e"} {
		if batch.Reports[i].NodeID != want {
			t.Errorf("batch report %d from %s, want %s (in arrival order)", i, batch.Reports[i].NodeID, want)
		}
	}
	if b.inFlight != 0 || len(b.queue) != 0 {
		t.Errorf("after all: %d in flight, %d queued", b.inFlight, len(b.queue))
	}
}

// TestReportBatchBounds: one entry holds at most maxBatchStatuses statuses
// (or one report, however big) and maxBatchReports reports.
func TestReportBatchBounds(t *testing.T) {
	q := func(sizes ...int) *reportBatcher {
		b := &reportBatcher{}
		for i, n := range sizes {
			b.queue = append(b.queue, &queuedReport{upd: report(fmt.Sprint(i), n)})
		}
		return b
	}
	many := make([]int, maxBatchReports+5)
	for i := range many {
		many[i] = 1
	}
	tests := []struct {
		name  string
		sizes []int
		want  []int // reports per entry
	}{
		{"one", []int{3}, []int{1}},
		{"statuses bound", []int{maxBatchStatuses - 10, 10, 1}, []int{2, 1}},
		{"a big report alone", []int{maxBatchStatuses + 100, 1}, []int{1, 1}},
		{"reports bound", many, []int{maxBatchReports, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := q(tt.sizes...)
			var got []int
			for len(b.queue) > 0 {
				got = append(got, len(b.take()))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("entries of %v reports, want %v", got, tt.want)
			}
		})
	}
}

// waitQueued waits until b holds n queued reports.
func waitQueued(t *testing.T, b *reportBatcher, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reports queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}
