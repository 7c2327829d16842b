package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// TestPsAfterScaleDown: replicas removed by a scale down are history (only
// under -a), and a stopped task shows no health.
func TestPsAfterScaleDown(t *testing.T) {
	tasks := []*types.Task{
		{ID: "w1", Service: "web", Slot: 1, DesiredState: types.DesiredRunning, State: types.TaskRunning, Health: types.HealthHealthy, CreateIndex: 1},
		{ID: "w2", Service: "web", Slot: 2, DesiredState: types.DesiredShutdown, State: types.TaskShutdown, Health: types.HealthHealthy, CreateIndex: 2},
		{ID: "w3", Service: "web", Slot: 3, DesiredState: types.DesiredShutdown, State: types.TaskShutdown, Health: types.HealthHealthy, CreateIndex: 3},
		{ID: "job", Service: "job", Slot: 1, DesiredState: types.DesiredRunning, State: types.TaskFailed, Health: types.HealthHealthy, CreateIndex: 4},
	}
	got := currentTasks(tasks)
	sortTasks(got)
	var ids []string
	for _, t := range got {
		ids = append(ids, t.ID)
	}
	if want := "job w1"; strings.Join(ids, " ") != want {
		t.Errorf("current = %v, want %s (scaled-down replicas are history)", ids, want)
	}
	var b strings.Builder
	app := &types.App{Name: "hello", Services: []*types.Service{{Name: "web"}, {Name: "job"}}}
	if err := writeTaskTable(&b, app, tasks, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, "shutdown") || strings.Contains(line, "failed") {
			if strings.Contains(line, "healthy") {
				t.Errorf("a stopped task shows health: %q", line)
			}
		}
	}
}
