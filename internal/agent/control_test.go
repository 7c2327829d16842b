package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// A task berth stop -t ends is stopped with the stop's grace, not the one
// it started with.
func TestStopUsesTheLifecycleGrace(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("web", 1)
	svc.StopGracePeriod, svc.StopSignal = 30*time.Second, "SIGINT"
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "running", func() bool { return m.inState(types.TaskRunning, ids...) })

	stopped := *svc
	stopped.Lifecycle = &types.Lifecycle{Stopped: true, Index: 1 << 40, Grace: 2 * time.Second}
	m.addService("app", &stopped)
	m.setDesired(types.DesiredShutdown, ids...)
	waitFor(t, "shut down", func() bool { return m.inState(types.TaskShutdown, ids...) })
	fd.lock(func() {
		want := []stopCall{{id: ids[0], grace: 2 * time.Second, signal: "SIGINT"}}
		if fmt.Sprint(fd.stops) != fmt.Sprint(want) {
			t.Errorf("stops = %v, want %v", fd.stops, want)
		}
	})
}

// A task up -t or down -t told to shut down (its StopGrace) is stopped
// with that grace, not the service's.
func TestStopUsesTheTaskGrace(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("web", 1)
	svc.StopGracePeriod, svc.StopSignal = 30*time.Second, "SIGINT"
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "running", func() bool { return m.inState(types.TaskRunning, ids...) })

	m.update(func() {
		m.tasks[ids[0]].DesiredState, m.tasks[ids[0]].StopGrace = types.DesiredShutdown, 3*time.Second
	})
	waitFor(t, "shut down", func() bool { return m.inState(types.TaskShutdown, ids...) })
	fd.lock(func() {
		want := []stopCall{{id: ids[0], grace: 3 * time.Second, signal: "SIGINT"}}
		if fmt.Sprint(fd.stops) != fmt.Sprint(want) {
			t.Errorf("stops = %v, want %v", fd.stops, want)
		}
	})
}
