package state

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func TestLifecycleCommands(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stopped := func(app *types.App, name string) bool { return app.Service(name).IsStopped() }
	tests := []struct {
		name     string
		cmds     []Command
		stopped  map[string]bool // by service, after the commands
		restart  string          // a service whose Lifecycle asks a restart
		grace    time.Duration   // of api's Lifecycle
		wantErr  string
		errIsNot bool // the error wraps ErrNotFound
	}{
		{name: "stop one", cmds: []Command{StopServices{App: "web", Services: []string{"api"}, Grace: 3 * time.Second, Now: t0}},
			stopped: map[string]bool{"api": true, "db": false}, grace: 3 * time.Second},
		{name: "stop all", cmds: []Command{StopServices{App: "web", Now: t0}},
			stopped: map[string]bool{"api": true, "db": true}},
		{name: "start after stop", cmds: []Command{StopServices{App: "web", Now: t0}, StartServices{App: "web", Services: []string{"db"}, Now: t0}},
			stopped: map[string]bool{"api": true, "db": false}},
		{name: "a second stop keeps the first's grace", cmds: []Command{
			StopServices{App: "web", Grace: time.Second, Now: t0}, StopServices{App: "web", Grace: time.Minute, Now: t0}},
			stopped: map[string]bool{"api": true, "db": true}, grace: time.Second},
		{name: "restart starts a stopped service", cmds: []Command{
			StopServices{App: "web", Services: []string{"api"}, Now: t0}, RestartServices{App: "web", Services: []string{"api"}, Now: t0}},
			stopped: map[string]bool{"api": false, "db": false}, restart: "api"},
		{name: "unknown service", cmds: []Command{StopServices{App: "web", Services: []string{"nope"}, Now: t0}},
			wantErr: "service nope of app web", errIsNot: true},
		{name: "unknown app", cmds: []Command{StartServices{App: "gone", Now: t0}}, wantErr: "app gone", errIsNot: true},
		{name: "app being removed", cmds: []Command{&DeleteApp{Name: "web"}, StopServices{App: "web", Now: t0}},
			wantErr: "being removed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustApply(UpsertApp{App: testApp(), Now: t0})
			var err error
			for _, c := range tc.cmds {
				if _, err = h.apply(c); err != nil {
					break
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrNotFound) != tc.errIsNot {
					t.Fatalf("err = %v, want one saying %q (not found: %v)", err, tc.wantErr, tc.errIsNot)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			app := h.store.View().App("web")
			for name, want := range tc.stopped {
				if got := stopped(app, name); got != want {
					t.Errorf("%s stopped = %v, want %v", name, got, want)
				}
			}
			if tc.restart != "" && (app.Service(tc.restart).Lifecycle == nil || !app.Service(tc.restart).Lifecycle.Restart) {
				t.Errorf("%s lifecycle = %+v, want a restart", tc.restart, app.Service(tc.restart).Lifecycle)
			}
			if l := app.Service("api").Lifecycle; tc.grace != 0 && (l == nil || l.Grace != tc.grace) {
				t.Errorf("api lifecycle = %+v, want grace %v", l, tc.grace)
			}
		})
	}
}

// A stop is desired state: it is not a new version, it survives a snapshot
// restore, and only a submission (berth up) undoes it.
func TestStopSurvivesRestoreAndUpStarts(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	before := h.store.View().App("web").Service("api")
	h.mustApply(StopServices{App: "web", Services: []string{"api"}, Now: t0})
	after := h.store.View().App("web").Service("api")
	if after.Version != before.Version || after.SpecHash != before.SpecHash {
		t.Fatalf("stop changed the version: %d/%s -> %d/%s", before.Version, before.SpecHash, after.Version, after.SpecHash)
	}
	dst := newHarness(t)
	if err := dst.fsm.Restore(ioNopCloser(snapshotOf(t, h.fsm))); err != nil {
		t.Fatal(err)
	}
	if !dst.store.View().App("web").Service("api").IsStopped() {
		t.Fatal("the stop was lost in a snapshot restore")
	}
	// A submission carrying a lifecycle (a client that sent back what it
	// read) starts the service all the same.
	app := testApp()
	app.Service("api").Lifecycle = &types.Lifecycle{Stopped: true, Index: 1}
	dst.index = h.index
	dst.mustApply(UpsertApp{App: app, Now: t0})
	got := dst.store.View().App("web").Service("api")
	if got.IsStopped() || got.Version != before.Version {
		t.Fatalf("after up: stopped %v, version %d; want started at version %d", got.IsStopped(), got.Version, before.Version)
	}
}

func TestRemoveStoppedTasks(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	h.mustApply(UpsertNode{Node: testNode("n1")})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("a1", "api", 1), testTask("a2", "api", 2), testTask("d1", "db", 1), testTask("a3", "api", 3)}, Now: t0})
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "a1", NodeID: "n1"}, {TaskID: "a2", NodeID: "n1"}, {TaskID: "d1", NodeID: "n1"}, {TaskID: "a3", NodeID: "n1"}}, Now: t0})
	h.mustApply(TaskUpdates{Desired: map[string]types.TaskState{"a1": types.DesiredShutdown, "a2": types.DesiredShutdown, "d1": types.DesiredShutdown}, Now: t0})
	h.mustApply(TaskStatusUpdate{NodeID: "n1", Now: t0, Statuses: []types.TaskStatus{
		{TaskID: "a1", State: types.TaskShutdown}, // stopped as told: removed
		{TaskID: "a2", State: types.TaskRunning},  // told, still stopping: kept
		{TaskID: "d1", State: types.TaskShutdown}, // another service: kept
		{TaskID: "a3", State: types.TaskComplete}, // finished, still wanted: kept
	}})
	res := h.mustApply(RemoveStoppedTasks{App: "web", Services: []string{"api"}}).([]*types.Task)
	if len(res) != 1 || res[0].ID != "a1" {
		t.Fatalf("removed %v, want only a1", res)
	}
	for _, id := range []string{"a2", "d1", "a3"} {
		if h.store.View().Task(id) == nil {
			t.Errorf("task %s was removed", id)
		}
	}
	if _, err := h.apply(RemoveStoppedTasks{App: "web", Services: []string{"nope"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rm of an unknown service: %v, want ErrNotFound", err)
	}
}
