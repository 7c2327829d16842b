package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// cutOffCommitter commits the first `left` commands, then fails every one
// after, as a leader that loses office does.
type cutOffCommitter struct {
	w    *world
	left int
}

func (c *cutOffCommitter) Commit(ctx context.Context, cmd state.Command) (any, error) {
	if c.left == 0 {
		return nil, errors.New("leadership lost")
	}
	c.left--
	return c.w.Commit(ctx, cmd)
}

// A leader lost right after its first commit of marking a node down still
// leaves the node's tasks lost: one entry does both.
func TestNodeDownAndTasksLostInOneCommit(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 2)}})
	w.step()
	w.runAll("a", "web")
	mon := NewNodeMonitor(w.store, &cutOffCommitter{w: w, left: 1}, fakeBeats{}, w.clock, 15*time.Second, nil)
	w.clock.Advance(20 * time.Second)
	_ = mon.Check(context.Background())
	if n := w.store.View().Node("n1"); n.Status != types.NodeDown {
		t.Fatalf("n1 is %s, want down", n.Status)
	}
	for _, tk := range w.tasks("a", "web") {
		if tk.State != types.TaskLost {
			t.Errorf("task %s on the down node is %s, want lost", tk.ID, tk.State)
		}
	}
}

// Tasks left "running" on a down node (by an old two-entry mark-down cut
// short) are taken as lost and replaced on a ready node.
func TestReconcilerLosesTasksStrandedOnDownNode(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.node("n2")
	w.up(&types.App{Name: "a", Services: []*types.Service{service("web", 2)}})
	w.step()
	w.runAll("a", "web")
	w.must(&state.SetNodeStatus{ID: "n2", Status: types.NodeDown}) // an old entry: no time, no tasks lost
	w.step()
	for _, tk := range w.tasks("a", "web") {
		if tk.NodeID == "n2" && !tk.State.Terminal() {
			t.Errorf("task %s is still %s on down n2", tk.ID, tk.State)
		}
		if tk.DesiredState == types.DesiredRunning && tk.NodeID != "n1" {
			t.Errorf("wanted task %s on %s, want n1", tk.ID, tk.NodeID)
		}
	}
	if got := w.wanted("a", "web"); got[types.TaskRunning]+got[types.TaskAssigned] != 2 {
		t.Fatalf("after n2 went down: %v, want 2 on n1", got)
	}
}

// A monitor that did not run for longer than the TTL (its manager was
// paused) gives every node a full TTL again instead of marking them all
// down; a node still silent after that is marked down.
func TestNodeMonitorGraceAfterOwnStall(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	const ttl = 400 * time.Millisecond
	mon := NewNodeMonitor(w.store, w, fakeBeats{"n1": w.clock.Now()}, w.clock, ttl, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mon.Run(ctx) }()
	defer func() { cancel(); <-done }()
	w.clock.Advance(10 * time.Second) // the manager was stopped for 10s
	// Three ticks at least (every ttl/4) with the clock still: n1 must stay.
	time.Sleep(4 * ttl / 4 * 2)
	if st := w.store.View().Node("n1").Status; st != types.NodeReady {
		t.Fatalf("n1 is %s right after the monitor's own stall, want ready", st)
	}
	// Time goes on normally and n1 stays silent: down after its TTL.
	deadline := time.Now().Add(10 * time.Second)
	for w.store.View().Node("n1").Status != types.NodeDown {
		if time.Now().After(deadline) {
			t.Fatal("n1 never marked down after the grace")
		}
		// Slower than real time, so a late tick on a loaded machine does
		// not look like a stall.
		w.clock.Advance(10 * time.Millisecond)
		time.Sleep(20 * time.Millisecond)
	}
}

// A new leader gives every node a full TTL from when it took office, even
// one whose last beat (heard in an earlier term) is long past.
func TestNewLeaderGivesFullTTL(t *testing.T) {
	w := newWorld(t)
	w.node("n1")
	w.node("n2")
	const ttl = 15 * time.Second
	beats := fakeBeats{"n1": w.clock.Now().Add(-time.Hour)} // n2: never heard
	mon := NewNodeMonitor(w.store, w, beats, w.clock, ttl, nil)
	w.clock.Advance(ttl - time.Second)
	if err := mon.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n2"} {
		if st := w.store.View().Node(id).Status; st != types.NodeReady {
			t.Fatalf("%s is %s within the new leader's grace", id, st)
		}
	}
	w.clock.Advance(2 * time.Second)
	if err := mon.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"n1", "n2"} {
		if st := w.store.View().Node(id).Status; st != types.NodeDown {
			t.Fatalf("%s is %s a TTL after the grace began", id, st)
		}
	}
}

// Most ready nodes silent together is likelier the manager's trouble than
// theirs: the monitor holds massSilenceHold TTLs before marking any down,
// and a node whose beats resume meanwhile stays ready. A smaller silence
// is marked at once.
func TestNodeMonitorHoldsOnMassSilence(t *testing.T) {
	const ttl = 15 * time.Second
	for _, tc := range []struct {
		name          string
		nodes, silent int
		held          bool
	}{
		{"six of ten", 10, 6, true},
		{"half of ten", 10, 5, false},
		{"all of three", 3, 3, true},
		{"both of two", 2, 2, false},
		{"one of three", 3, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			beats := fakeBeats{}
			var silent []string
			for i := range tc.nodes {
				id := fmt.Sprintf("n%d", i)
				w.node(id)
				if i < tc.silent {
					silent = append(silent, id)
				}
			}
			mon := NewNodeMonitor(w.store, w, beats, w.clock, ttl, nil)
			beatAll := func(skip []string) {
				for i := range tc.nodes {
					if id := fmt.Sprintf("n%d", i); !slices.Contains(skip, id) {
						beats[id] = w.clock.Now()
					}
				}
			}
			status := func(id string) types.NodeStatus { return w.store.View().Node(id).Status }
			check := func() {
				t.Helper()
				if err := mon.Check(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			// Past one TTL: the silent ones expired.
			for range 4 {
				w.clock.Advance(ttl / 4)
				beatAll(silent)
				check()
			}
			w.clock.Advance(time.Second)
			beatAll(silent)
			check()
			if !tc.held {
				for _, id := range silent {
					if st := status(id); st != types.NodeDown {
						t.Fatalf("%s is %s a TTL after its last beat, want down", id, st)
					}
				}
				return
			}
			for _, id := range silent {
				if st := status(id); st != types.NodeReady {
					t.Fatalf("%s is %s within the hold of a mass silence, want ready", id, st)
				}
			}
			// The first silent node comes back within the hold; the rest
			// stay silent past it.
			back := silent[0]
			w.clock.Advance(ttl)
			beats[back] = w.clock.Now()
			beatAll(silent)
			check()
			w.clock.Advance(massSilenceHold*ttl - ttl)
			beats[back] = w.clock.Now()
			beatAll(silent)
			check()
			if st := status(back); st != types.NodeReady {
				t.Errorf("%s beat again within the hold and is %s, want ready", back, st)
			}
			for _, id := range silent[1:] {
				if st := status(id); st != types.NodeDown {
					t.Errorf("%s is %s, still silent past the hold, want down", id, st)
				}
			}
			for i := tc.silent; i < tc.nodes; i++ {
				if id := fmt.Sprintf("n%d", i); status(id) != types.NodeReady {
					t.Errorf("%s beat all along and is %s", id, status(id))
				}
			}
		})
	}
}

// The TTL grows with the cluster so the leader takes at most
// MaxBeatsPerSecond beats (three per node and TTL); below that it is the
// configured one.
func TestHeartbeatTTLFollowsClusterSize(t *testing.T) {
	cases := []struct {
		base  time.Duration
		nodes int
		want  time.Duration
	}{
		{15 * time.Second, 0, 15 * time.Second},
		{15 * time.Second, 500, 15 * time.Second},
		{15 * time.Second, 1000, 30 * time.Second},
		{15 * time.Second, 10000, 300 * time.Second},
		{time.Minute, 1000, time.Minute},
	}
	for _, tc := range cases {
		if got := HeartbeatTTL(tc.base, tc.nodes); got != tc.want {
			t.Errorf("HeartbeatTTL(%s, %d) = %s, want %s", tc.base, tc.nodes, got, tc.want)
		}
	}
}

// In a cluster large enough for a longer TTL, a node silent past the
// configured TTL but within the longer one stays ready; past the longer
// one it is marked down. When the cluster shrinks, the longer TTL holds
// until it has passed once (agents learn the shorter one from their beats'
// answers).
func TestNodeMonitorUsesTheClustersTTL(t *testing.T) {
	w := newWorld(t)
	const base = time.Second
	beats := fakeBeats{}
	for i := range 200 { // 200 nodes: 6 s
		id := fmt.Sprintf("n%03d", i)
		w.node(id)
		beats[id] = w.clock.Now()
	}
	mon := NewNodeMonitor(w.store, w, beats, w.clock, base, nil)
	if got := mon.TTL(); got != 6*time.Second {
		t.Fatalf("TTL with 200 nodes: %s, want 6s", got)
	}
	w.clock.Advance(5 * time.Second)
	for id := range beats {
		if id != "n000" {
			beats[id] = w.clock.Now()
		}
	}
	if err := mon.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := w.store.View().Node("n000").Status; st != types.NodeReady {
		t.Fatalf("n000, silent 5s of a 6s TTL, is %s", st)
	}
	w.clock.Advance(2 * time.Second)
	if err := mon.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := w.store.View().Node("n000").Status; st != types.NodeDown {
		t.Fatalf("n000, silent 7s of a 6s TTL, is %s", st)
	}

	now := w.clock.Now()
	steps := []struct {
		nodes int
		after time.Duration
		want  time.Duration
	}{
		{100, 0, 6 * time.Second}, // shrank: the longer TTL holds...
		{100, 5 * time.Second, 6 * time.Second},
		{100, 7 * time.Second, 3 * time.Second},  // ...until it passed once
		{400, 8 * time.Second, 12 * time.Second}, // grew: at once
	}
	for _, st := range steps {
		if got := mon.follow(st.nodes, now.Add(st.after)); got != st.want || mon.TTL() != st.want {
			t.Errorf("%d nodes after %s: TTL %s (in force %s), want %s", st.nodes, st.after, got, mon.TTL(), st.want)
		}
	}
}
