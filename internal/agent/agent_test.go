package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

func TestRegistersAndHeartbeats(t *testing.T) {
	m := newFakeManager(t)
	m.ttl = 90 * time.Millisecond // heartbeats every 30ms
	m.refuseJoin = true           // no leader yet: the agent retries
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))

	waitFor(t, "two refused registrations", func() bool {
		n := 0
		m.read(func() { n = m.refused })
		return n >= 2
	})
	m.update(func() { m.refuseJoin = false })
	waitFor(t, "three heartbeats", func() bool {
		n := 0
		m.read(func() { n = m.heartbeats })
		return n >= 3
	})
	var node types.Node
	m.read(func() { node = m.nodes[a.NodeID()] })
	if node.Name != "n1" || node.Address != a.Addr() || !node.HasDriver("fake") {
		t.Errorf("registered node = %+v, want name n1, address %s, driver fake", node, a.Addr())
	}
	if node.Capacity.NanoCPUs <= 0 || node.Capacity.MemoryBytes <= 0 {
		t.Errorf("capacity = %+v, want CPU and memory", node.Capacity)
	}
	if len(a.NodeID()) != 16 {
		t.Errorf("node ID %q, want 16 hex digits", a.NodeID())
	}

	svc := service("web", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "the task running", func() bool { return m.inState(types.TaskRunning, ids...) })

	// A manager that forgot the node gets it registered again, and is told
	// the state of its tasks anew.
	m.update(func() {
		delete(m.nodes, a.NodeID())
		m.reports = nil
	})
	waitFor(t, "a second registration", func() bool { return m.known(a.NodeID()) })
	waitFor(t, "the running task reported again", func() bool {
		again := false
		m.read(func() {
			for _, b := range m.reports {
				for _, ts := range b {
					again = again || (ts.TaskID == ids[0] && ts.State == types.TaskRunning)
				}
			}
		})
		return again
	})
	m.read(func() {
		if m.registrations != 2 {
			t.Errorf("registrations = %d, want 2", m.registrations)
		}
	})
}

func TestVanishedTaskIsFailedNotRestarted(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("web", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "the task running", func() bool { return m.inState(types.TaskRunning, ids...) })

	// Removed behind the agent's back, with no event: polling finds out.
	fd.lock(func() { delete(fd.tasks, ids[0]) })
	waitFor(t, "the task failed", func() bool { return m.inState(types.TaskFailed, ids...) })
	if got := m.task(ids[0]).Error; got != vanishedError {
		t.Errorf("error = %q, want %q", got, vanishedError)
	}
	if n := fd.startCount(ids[0]); n != 1 {
		t.Errorf("started %d times, want once", n)
	}
}

func TestStartsWithBoundedParallelism(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	gate := make(chan struct{})
	fd.startHook = func(ctx context.Context, cfg *driver.TaskConfig) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("web", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 20)

	waitFor(t, "8 starts in flight", func() bool {
		n := 0
		fd.lock(func() { n = fd.inFlight })
		return n == 8
	})
	// The loop is not blocked by the starts it waits for: a task not yet
	// started is shut down meanwhile.
	m.setDesired(types.DesiredShutdown, ids[19])
	waitFor(t, "the waiting task reported shut down", func() bool { return m.inState(types.TaskShutdown, ids[19]) })
	waitFor(t, "8 tasks reported starting", func() bool { return m.inState(types.TaskStarting, ids[:8]...) })

	close(gate)
	waitFor(t, "19 tasks running", func() bool { return m.inState(types.TaskRunning, ids[:19]...) })
	fd.lock(func() {
		if fd.maxInFlight != 8 {
			t.Errorf("at most %d starts were in flight, want 8", fd.maxInFlight)
		}
		if fd.starts[ids[19]] != 0 {
			t.Errorf("the task shut down before it started was started")
		}
	})
	got := m.task(ids[0])
	if got.ContainerID != "c-"+ids[0] || got.StartedAt.IsZero() {
		t.Errorf("running task = %+v, want its container ID and start time", got)
	}
}

func TestStartFailureIsRejected(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	fd.startHook = func(ctx context.Context, cfg *driver.TaskConfig) error {
		if cfg.Service.Name == "web" {
			return fmt.Errorf("image web:1 not found on the node and could not be pulled: %w", driver.ErrImageNotFound)
		}
		if cfg.Service.Name == "db" {
			return errors.New("port 5432 is taken")
		}
		return nil
	}
	a, _ := runAgent(t, testConfig(t, m, fd))
	web := service("web", 1)
	m.addService("app", web)
	ids := m.addTasks(a.NodeID(), "app", web, "web", 1)

	waitFor(t, "the task rejected", func() bool { return m.inState(types.TaskRejected, ids...) })
	if got, want := m.task(ids[0]).Error, "start on node n1: image web:1 not found on the node and could not be pulled: image not found"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
	db := service("db", 1)
	m.addService("app", db)
	dbs := m.addTasks(a.NodeID(), "app", db, "db", 1)
	waitFor(t, "the db rejected", func() bool { return m.inState(types.TaskRejected, dbs...) })
	if got, want := m.task(dbs[0]).Error, "start on node n1: port 5432 is taken"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}

	// Another task's start proves the loop went round again without
	// retrying the rejected ones.
	apiSvc := service("api", 1)
	m.addService("app", apiSvc)
	more := m.addTasks(a.NodeID(), "app", apiSvc, "api", 1)
	waitFor(t, "the next task running", func() bool { return m.inState(types.TaskRunning, more...) })
	if n, k := fd.startCount(ids[0]), fd.startCount(dbs[0]); n != 1 || k != 1 {
		t.Errorf("rejected tasks started %d and %d times, want once each", n, k)
	}
}

func TestExitsAndHealthAreReported(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("job", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "job", 4)
	waitFor(t, "tasks running", func() bool { return m.inState(types.TaskRunning, ids...) })

	fd.setHealth(ids[3], types.HealthUnhealthy)
	waitFor(t, "unhealthy reported", func() bool { return m.task(ids[3]).Health == types.HealthUnhealthy })

	tests := []struct {
		id, reason string
		code       int
		state      types.TaskState
		err        string
	}{
		{id: ids[0], code: 0, state: types.TaskComplete},
		{id: ids[1], code: 1, state: types.TaskFailed, err: "exit code 1"},
		{id: ids[2], code: 137, reason: "out of memory", state: types.TaskFailed, err: "exit code 137: out of memory"},
	}
	for _, tt := range tests {
		fd.exit(tt.id, tt.code, tt.reason)
	}
	for _, tt := range tests {
		waitFor(t, tt.id+" "+string(tt.state), func() bool { return m.inState(tt.state, tt.id) })
		got := m.task(tt.id)
		if got.ExitCode == nil || *got.ExitCode != tt.code || got.Error != tt.err {
			t.Errorf("%s: exit code %v, error %q; want %d, %q", tt.id, got.ExitCode, got.Error, tt.code, tt.err)
		}
	}
}

func TestShutdownUsesRememberedGraceAndSignal(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	v1 := service("web", 1)
	v1.StopGracePeriod, v1.StopSignal = 3*time.Second, "SIGINT"
	m.addService("app", v1)
	ids := m.addTasks(a.NodeID(), "app", v1, "web", 1)
	waitFor(t, "v1 running", func() bool { return m.inState(types.TaskRunning, ids...) })

	// A new version replaces the spec the manager sends; the old task is
	// stopped with the settings it started with.
	v2 := service("web", 2)
	v2.StopGracePeriod = time.Second
	m.addService("app", v2)
	m.setDesired(types.DesiredShutdown, ids...)
	waitFor(t, "v1 shut down", func() bool { return m.inState(types.TaskShutdown, ids...) })
	fd.lock(func() {
		want := []stopCall{{id: ids[0], grace: 3 * time.Second, signal: "SIGINT"}}
		if fmt.Sprint(fd.stops) != fmt.Sprint(want) {
			t.Errorf("stops = %v, want %v", fd.stops, want)
		}
	})
}

func TestTasksUnknownToTheManagerAreRemoved(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	fd.put(driver.Status{TaskID: "stray", App: "old", Service: "web", State: driver.StateRunning})
	fd.put(driver.Status{TaskID: "done", App: "old", Service: "web", State: driver.StateExited, ExitCode: 0})
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("web", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "the known task running", func() bool { return m.inState(types.TaskRunning, ids...) })
	waitFor(t, "unknown tasks removed", func() bool { return !fd.has("stray") && !fd.has("done") })
	fd.lock(func() {
		if len(fd.stops) != 1 || fd.stops[0].id != "stray" || fd.stops[0].grace != defaultGrace {
			t.Errorf("stops = %v, want the running stray stopped with the default grace", fd.stops)
		}
	})

	// A task the manager drops after it ran is removed too.
	m.dropTask(ids[0])
	waitFor(t, "the dropped task removed", func() bool { return !fd.has(ids[0]) })
}

func TestRestartedAgentAdoptsItsTasks(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	cfg := testConfig(t, m, fd)
	a1, stop1 := runAgent(t, cfg)
	v1 := service("web", 1)
	v1.StopGracePeriod, v1.StopSignal = 7*time.Second, "SIGQUIT"
	m.addService("app", v1)
	ids := m.addTasks(a1.NodeID(), "app", v1, "web", 3)
	waitFor(t, "tasks running", func() bool { return m.inState(types.TaskRunning, ids...) })
	stop1()

	// While no agent runs, one task crashes and the service moves on to v2.
	fd.exit(ids[0], 2, "")
	m.addService("app", service("web", 2))

	a2, _ := runAgent(t, cfg)
	if a2.NodeID() != a1.NodeID() {
		t.Fatalf("node ID after restart = %s, want %s", a2.NodeID(), a1.NodeID())
	}
	waitFor(t, "the crash reported", func() bool { return m.inState(types.TaskFailed, ids[0]) })
	m.setDesired(types.DesiredShutdown, ids[1])
	waitFor(t, "the old version shut down", func() bool { return m.inState(types.TaskShutdown, ids[1]) })
	for _, id := range ids {
		if n := fd.startCount(id); n != 1 {
			t.Errorf("%s started %d times, want once", id, n)
		}
	}
	fd.lock(func() {
		want := []stopCall{{id: ids[1], grace: 7 * time.Second, signal: "SIGQUIT"}}
		if fmt.Sprint(fd.stops) != fmt.Sprint(want) {
			t.Errorf("stops = %v, want %v (settings kept across the restart)", fd.stops, want)
		}
	})
	if !m.inState(types.TaskRunning, ids[2]) {
		t.Errorf("adopted task state = %s, want running", m.task(ids[2]).State)
	}
}

func TestStatusChangesAreBatched(t *testing.T) {
	m := newFakeManager(t)
	m.failReports = 2 // the first batches are refused and sent again
	fd := newFakeDriver("fake")
	cfg := testConfig(t, m, fd)
	cfg.Parallel = 50
	a, _ := runAgent(t, cfg)
	svc := service("web", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 50)
	waitFor(t, "50 tasks running", func() bool { return m.inState(types.TaskRunning, ids...) })

	// 100 changes (starting, running per task); a handful of calls.
	if n := m.reportCalls(); n > 10 {
		t.Errorf("%d ReportStatus calls for 100 changes, want a few batches", n)
	}
}

func TestTeardownAfterDown(t *testing.T) {
	tests := []struct {
		name string
		down func(m *fakeManager, ids []string)
	}{
		// berth's manager stops listing a deleted app's tasks.
		{name: "tasks dropped", down: func(m *fakeManager, ids []string) {
			m.update(func() { m.apps["app"].Deleting, m.apps["app"].RemoveVolumes = true, true })
			for _, id := range ids {
				m.dropTask(id)
			}
		}},
		// A manager may also list them, to be shut down.
		{name: "tasks shut down", down: func(m *fakeManager, ids []string) {
			m.update(func() {
				m.apps["app"].Deleting, m.apps["app"].RemoveVolumes = true, true
				for _, id := range ids {
					m.tasks[id].DesiredState = types.DesiredShutdown
				}
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testTeardown(t, tt.down) })
	}
}

func testTeardown(t *testing.T, down func(m *fakeManager, ids []string)) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("web", 1)
	svc.StopGracePeriod = 2 * time.Second
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 2)
	waitFor(t, "tasks running", func() bool { return m.inState(types.TaskRunning, ids...) })

	down(m, ids)
	waitFor(t, "the teardown reported", func() bool {
		n := 0
		m.read(func() { n = len(m.teardowns) })
		return n > 0
	})
	for _, id := range ids {
		if fd.has(id) {
			t.Errorf("task %s left in the driver at teardown", id)
		}
		listed := false
		m.read(func() { listed = m.tasks[id] != nil })
		if listed && !m.inState(types.TaskShutdown, id) {
			t.Errorf("task %s is %s at teardown, want its shutdown reported first", id, m.task(id).State)
		}
	}
	fd.lock(func() {
		if len(fd.stops) != 2 || fd.stops[0].grace != 2*time.Second {
			t.Errorf("stops = %v, want both tasks stopped with their grace period", fd.stops)
		}
	})
	// Another app's task proves the loop went round again without a
	// second teardown.
	other := service("db", 1)
	m.addService("other", other)
	more := m.addTasks(a.NodeID(), "other", other, "db", 1)
	waitFor(t, "the other app running", func() bool { return m.inState(types.TaskRunning, more...) })
	m.read(func() {
		if fmt.Sprint(m.teardowns) != "[app]" {
			t.Errorf("teardowns = %v, want [app] once", m.teardowns)
		}
	})
	fd.lock(func() {
		if fmt.Sprint(fd.removedApps) != fmt.Sprint([]appCall{{app: "app", volumes: true}}) {
			t.Errorf("RemoveApp calls = %v, want app with volumes once", fd.removedApps)
		}
	})
}

// An engine that never lets go of an app's network does not hold `down`
// up for ever: after TeardownGiveUp the agent reports the teardown anyway.
func TestTeardownGivesUpOnStuckNetwork(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	fd.removeAppErr = errors.New("network app_default has active endpoints")
	cfg := testConfig(t, m, fd)
	cfg.Timing.TeardownGiveUp = 300 * time.Millisecond
	a, _ := runAgent(t, cfg)
	svc := service("web", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "task running", func() bool { return m.inState(types.TaskRunning, ids...) })
	m.update(func() {
		// As the real manager does: a deleted app's tasks are no longer
		// listed.
		m.apps["app"].Deleting = true
		delete(m.tasks, ids[0])
		m.order = slices.DeleteFunc(m.order, func(id string) bool { return id == ids[0] })
	})
	waitFor(t, "the teardown reported despite the stuck network", func() bool {
		n := 0
		m.read(func() { n = len(m.teardowns) })
		return n > 0
	})
	fd.lock(func() {
		if len(fd.removedApps) < 2 {
			t.Errorf("RemoveApp called %d times, want retries before giving up", len(fd.removedApps))
		}
	})
}

// A heartbeat's answer may carry a longer TTL (the cluster grew): the
// agent then beats at a third of it, not at the registration's pace.
func TestHeartbeatsFollowTheManagersTTL(t *testing.T) {
	m := newFakeManager(t)
	m.ttl = 90 * time.Millisecond // heartbeats every 30ms
	fd := newFakeDriver("fake")
	runAgent(t, testConfig(t, m, fd))
	beats := func() (n int) {
		m.read(func() { n = m.heartbeats })
		return n
	}
	waitFor(t, "heartbeats at the registration's pace", func() bool { return beats() >= 3 })
	m.update(func() { m.beatTTL = 6 * time.Second }) // every 2s
	seen := beats()
	waitFor(t, "a heartbeat answered with the longer TTL", func() bool { return beats() > seen+1 })
	from := beats()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if n := beats(); n > from+1 {
			t.Fatalf("%d heartbeats within a second of a 6s TTL; want at most one (every 2s)", n-from)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
