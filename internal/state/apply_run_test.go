package state

import (
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// TestRemoveRuns: a one-off whose task ended (or never left pending) goes
// at once with its task; a running one is stopped and marked for removal,
// and goes once its task ended; start and restart do not bring it back;
// berth rm removes an ended one; names that are no one-off are skipped.
func TestRemoveRuns(t *testing.T) {
	oneOff := func(state types.TaskState) (*types.App, *types.Task) {
		app := testApp()
		app.Services = append(app.Services, &types.Service{Name: "db-run-0123456789ab", Image: "postgres:16", Mode: types.ModeReplicated,
			Replicas: 1, OneOff: &types.OneOff{Of: "db"}})
		task := testTask("t1", "db-run-0123456789ab", 1)
		task.State, task.DesiredState = state, types.DesiredRunning
		return app, task
	}
	tests := []struct {
		name     string
		state    types.TaskState
		cmds     []Command
		gone     bool // the one-off and its task are gone
		stopping bool // else: its Lifecycle is Stopped and Remove
	}{
		{name: "ended", state: types.TaskFailed, cmds: []Command{RemoveRuns{App: "web", Services: []string{"db-run-0123456789ab"}}}, gone: true},
		{name: "never placed", state: types.TaskPending, cmds: []Command{RemoveRuns{App: "web", Services: []string{"db-run-0123456789ab"}}}, gone: true},
		{name: "running", state: types.TaskRunning, cmds: []Command{RemoveRuns{App: "web", Services: []string{"db-run-0123456789ab"}}}, stopping: true},
		{name: "running, then started and restarted", state: types.TaskRunning, cmds: []Command{
			RemoveRuns{App: "web", Services: []string{"db-run-0123456789ab"}}, StartServices{App: "web"}, RestartServices{App: "web"}}, stopping: true},
		{name: "running, then ended", state: types.TaskRunning, cmds: []Command{
			RemoveRuns{App: "web", Services: []string{"db-run-0123456789ab"}},
			TaskUpdates{Desired: map[string]types.TaskState{"t1": types.DesiredShutdown}},
			TaskStatusUpdate{Statuses: []types.TaskStatus{{TaskID: "t1", State: types.TaskShutdown}}},
			RemoveRuns{App: "web", Services: []string{"db-run-0123456789ab"}}}, gone: true},
		{name: "rm names it by its service", state: types.TaskComplete, cmds: []Command{RemoveStoppedTasks{App: "web", Services: []string{"db"}}}, gone: true},
		{name: "rm leaves a running one", state: types.TaskRunning, cmds: []Command{RemoveStoppedTasks{App: "web"}}},
		{name: "a service of the file is no one-off", state: types.TaskComplete, cmds: []Command{RemoveRuns{App: "web", Services: []string{"db", "nope"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			app, task := oneOff(tc.state)
			h.mustApply(UpsertApp{App: app, Now: t0})
			h.mustApply(UpsertNode{Node: testNode("n1")})
			task.NodeID = "n1"
			if tc.state == types.TaskPending {
				task.NodeID = ""
			}
			h.mustApply(TaskUpdates{Create: []*types.Task{task}})
			for _, c := range tc.cmds {
				if tsu, ok := c.(TaskStatusUpdate); ok {
					tsu.NodeID = "n1"
					c = tsu
				}
				h.mustApply(c)
			}
			view := h.store.View()
			got := view.App("web")
			one := got.Service("db-run-0123456789ab")
			hasTask := view.Task("t1") != nil
			switch {
			case tc.gone && (one != nil || hasTask):
				t.Fatalf("one-off %+v, task left %v; want both gone", one, hasTask)
			case !tc.gone && (one == nil || !hasTask):
				t.Fatalf("one-off %+v, task left %v; want both kept", one, hasTask)
			case tc.stopping && (one.Lifecycle == nil || !one.Lifecycle.Stopped || !one.Lifecycle.Remove):
				t.Fatalf("lifecycle %+v, want stopped for removal", one.Lifecycle)
			case !slices.ContainsFunc(got.Services, func(s *types.Service) bool { return s.Name == "db" }):
				t.Fatal("db went with its one-off")
			}
		})
	}
}
