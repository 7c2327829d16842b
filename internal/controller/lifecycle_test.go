package controller

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// TestLifecycle drives berth stop, start and restart through the FSM and
// the reconciler, for a replicated and a global service.
func TestLifecycle(t *testing.T) {
	global := service("agent", 0)
	global.Mode = types.ModeGlobal
	tests := []struct {
		name string
		svc  *types.Service
		want int // wanted tasks when running
	}{
		{"replicated", service("web", 2), 2},
		{"global", global, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.node("n1")
			w.node("n2")
			name := tc.svc.Name
			w.up(&types.App{Name: "a", Services: []*types.Service{tc.svc, service("other", 1)}})
			w.step()
			w.runAll("a", name)
			w.runAll("a", "other")

			// stop: every task told to stop, none placed, the other
			// service left alone.
			w.must(&state.StopServices{App: "a", Services: []string{name}, Grace: 2 * time.Second, Now: w.clock.Now()})
			w.step()
			if got := w.wanted("a", name); len(got) != 0 {
				t.Fatalf("after stop: wanted %v, want none", got)
			}
			if got := w.wanted("a", "other"); got[types.TaskRunning] != 1 {
				t.Fatalf("after stop: other wanted %v, want its 1 running", got)
			}
			svc := w.store.View().App("a").Service(name)
			for _, tk := range w.tasks("a", name) {
				if g := svc.Lifecycle.GraceOf(tk); g != 2*time.Second {
					t.Errorf("task %s stops with grace %v, want the stop's 2s", tk.ID, g)
				}
				w.report(tk.ID, types.TaskStatus{State: types.TaskShutdown})
			}
			// It stays stopped: a finished task is not a crash to restart,
			// and a reconcile later (a new leader) places nothing.
			w.clock.Advance(time.Minute)
			w.step()
			if got := w.wanted("a", name); len(got) != 0 {
				t.Fatalf("a minute after stop: wanted %v, want none", got)
			}

			// start: the slots get new tasks.
			w.must(&state.StartServices{App: "a", Services: []string{name}, Now: w.clock.Now()})
			w.step()
			if got := w.wanted("a", name); got[types.TaskAssigned] != tc.want {
				t.Fatalf("after start: wanted %v, want %d assigned", got, tc.want)
			}
			w.runAll("a", name)
			w.clock.Advance(time.Minute)
			w.step()
			if st := w.store.View().App("a").Service(name).Status; st == nil || st.State != types.ServiceUp {
				t.Fatalf("after start: verdict %+v, want up", st)
			}

			// restart: each running task replaced once, at attempt 0.
			old := map[string]bool{}
			for _, tk := range w.tasks("a", name) {
				if tk.DesiredState == types.DesiredRunning {
					old[tk.ID] = true
				}
			}
			w.must(&state.RestartServices{App: "a", Services: []string{name}, Now: w.clock.Now()})
			// The pass that replaces the tasks does not judge the service
			// up on the tasks it is stopping (a client following the
			// restart would stop following too soon).
			if _, err := w.rec.Step(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := w.store.View().App("a").Service(name).Status; st != nil && st.State == types.ServiceUp {
				t.Fatalf("judged up in the pass that replaces its tasks: %+v", st)
			}
			w.step()
			w.step() // a second pass must not replace the replacements
			fresh := 0
			for _, tk := range w.tasks("a", name) {
				switch {
				case old[tk.ID] && tk.DesiredState != types.DesiredShutdown:
					t.Errorf("old task %s still desired %s after restart", tk.ID, tk.DesiredState)
				case !old[tk.ID] && tk.DesiredState == types.DesiredRunning:
					fresh++
					if tk.Attempt != 0 {
						t.Errorf("replacement %s at attempt %d, want 0", tk.ID, tk.Attempt)
					}
				}
			}
			if fresh != tc.want {
				t.Fatalf("after restart: %d new wanted tasks, want %d", fresh, tc.want)
			}
			if got := w.wanted("a", "other"); got[types.TaskRunning] != 1 {
				t.Fatalf("restart touched the other service: %v", got)
			}
		})
	}
}

// A stopped service stays stopped on a manager restored from a snapshot:
// its reconciler places nothing.
func TestStoppedSurvivesSnapshotRestore(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 2)}})
	w.step()
	w.runAll("a", "web")
	w.must(&state.StopServices{App: "a", Now: w.clock.Now()})
	w.step()
	for _, tk := range w.tasks("a", "web") {
		w.report(tk.ID, types.TaskStatus{State: types.TaskShutdown})
	}

	snap, err := w.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf sinkBuffer
	if err := snap.Persist(&buf); err != nil {
		t.Fatal(err)
	}
	w2 := newWorld(t)
	if err := w2.fsm.Restore(io.NopCloser(bytes.NewReader(buf.Bytes()))); err != nil {
		t.Fatal(err)
	}
	w2.index = w.index
	w2.step()
	if got := w2.wanted("a", "web"); len(got) != 0 {
		t.Fatalf("after a restore: wanted %v, want none", got)
	}
	// up brings it back, as Compose's up starts stopped containers.
	w2.up(&types.App{Name: "a", Services: []*types.Service{service("web", 2)}})
	w2.step()
	if got := w2.wanted("a", "web"); got[types.TaskAssigned] != 2 {
		t.Fatalf("after up: wanted %v, want 2 assigned", got)
	}
}

// sinkBuffer is a raft.SnapshotSink in memory.
type sinkBuffer struct{ bytes.Buffer }

func (*sinkBuffer) ID() string    { return "mem" }
func (*sinkBuffer) Close() error  { return nil }
func (*sinkBuffer) Cancel() error { return nil }

var _ raft.SnapshotSink = (*sinkBuffer)(nil)
