package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func task(id, app string, slot int, state types.TaskState, container string) *types.Task {
	return &types.Task{ID: id, App: app, Service: "web", Slot: slot, State: state, ContainerID: container}
}

func TestPerSlot(t *testing.T) {
	tasks := []*types.Task{
		task("t1", "a", 1, types.TaskRunning, "pid:101"),
		task("t2", "a", 1, types.TaskLost, "pid:102"), // stale, still runs
		task("t3", "a", 2, types.TaskRunning, "pid:103"),
		task("t4", "a", 3, types.TaskPending, ""), // no process yet
		task("t5", "b", 1, types.TaskFailed, "pid:104"),
		task("t6", "b", 2, types.TaskRunning, "pid:104"), // 104 reused by a live task
		task("t1", "a", 1, types.TaskRunning, "pid:101"), // the same task from another manager
	}
	got := perSlot(tasks, []int{101, 102, 103, 104, 999})
	want := map[string]int{"a/web/1": 2, "a/web/2": 1, "b/web/2": 1}
	if len(got) != len(want) {
		t.Fatalf("perSlot = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("perSlot[%s] = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}

// TestCountDuplicates replays samples of processes per slot and checks the
// peak and the longest stretch of one slot running twice.
func TestCountDuplicates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * watchInterval) }
	tests := []struct {
		name        string
		samples     []map[string]int
		peak        int
		longest     time.Duration
		slots       string
		lastSampled int // index of the last sample with a duplicate; -1: none
	}{
		{"never", []map[string]int{{"a/1": 1}, {"a/1": 1, "a/2": 1}}, 0, 0, "", -1},
		{"one sample", []map[string]int{{"a/1": 1}, {"a/1": 2}, {"a/1": 1}}, 1, watchInterval, "a/1", 1},
		{"three in a row", []map[string]int{{"a/1": 2}, {"a/1": 3}, {"a/1": 2}, {}}, 2, 3 * watchInterval, "a/1", 2},
		{"two slots, two stretches", []map[string]int{{"a/1": 2, "a/2": 2}, {"a/2": 2}, {}, {"a/1": 2}}, 2, 2 * watchInterval, "a/1 a/2", 3},
		{"open at the end", []map[string]int{{"a/1": 1}, {"a/1": 2}, {"a/1": 2}}, 1, 2 * watchInterval, "a/1", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &Watch{spans: map[string]*span{}, done: make(chan struct{}), cancel: func() {}}
			w.obs.NodesDown = map[string]time.Duration{}
			for i, s := range tt.samples {
				w.obs.Samples++
				w.countDuplicates(at(i), s)
			}
			close(w.done)
			obs := w.Stop(t)
			if obs.DupPeak != tt.peak || obs.DupLongest != tt.longest || strings.Join(obs.DupSlots, " ") != tt.slots {
				t.Errorf("got peak %d, longest %s, slots %v; want %d, %s, %s", obs.DupPeak, obs.DupLongest, obs.DupSlots, tt.peak, tt.longest, tt.slots)
			}
			var last time.Time
			if tt.lastSampled >= 0 {
				last = at(tt.lastSampled)
			}
			if !obs.DupLast.Equal(last) {
				t.Errorf("last duplicate at %v, want %v", obs.DupLast, last)
			}
		})
	}
}

func TestRestarted(t *testing.T) {
	before := []*types.Task{
		task("t1", "a", 1, types.TaskRunning, "pid:1"),
		task("t2", "a", 2, types.TaskRunning, "pid:2"),
		task("t3", "a", 3, types.TaskRunning, "pid:3"),
		task("t4", "a", 4, types.TaskRunning, "pid:4"),
		task("t5", "a", 5, types.TaskPending, ""), // not running: not judged
	}
	same := func(tk *types.Task) *types.Task { c := *tk; c.DesiredState = types.DesiredRunning; return &c }
	after := []*types.Task{same(before[0]), same(before[1]), same(before[2])}
	after[1].ContainerID = "pid:20"                     // another process
	after[2].State = types.TaskFailed                   // no longer running
	got := strings.Join(Restarted(before, after), "\n") // t4 is gone
	for _, want := range []string{"a-web-2 changed", "a-web-3 is failed", "a-web-4 (t4) is gone"} {
		if !strings.Contains(got, want) {
			t.Errorf("Restarted says:\n%s\nwant a line with %q", got, want)
		}
	}
	if n := len(Restarted(before, after)); n != 3 {
		t.Errorf("Restarted lists %d tasks, want 3", n)
	}
	if r := Restarted(before[:1], after[:1]); r != nil {
		t.Errorf("an unchanged task is listed: %v", r)
	}
}
