package agent

import (
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// TestDrainBeforeStop: a replica told to stop is out of the node's DNS
// before its stop signal. The manager drops it from the network map when
// it tells the node to stop it (one change); the map reaches the node's
// mesh on its own watch, here 200 ms after the node's tasks do, as a map
// that comes from another manager or over a slow link may. The test checks
// the order: once DNS no longer answers the replica, it has not had its
// stop signal yet; and then it gets it. Both ways a replica is told to
// stop: its desired state (scale down, update, node drain), and `down`,
// after which the node is no longer given the app's tasks.
func TestDrainBeforeStop(t *testing.T) {
	t.Run("desired shutdown", func(t *testing.T) { drainOrder(t, false) })
	t.Run("down", func(t *testing.T) { drainOrder(t, true) })
}

func drainOrder(t *testing.T, down bool) {
	m := newUnstartedFakeManager(t)
	var stopping atomic.Bool
	inner := m.srv.Config.Handler
	m.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == api.PathNetworkMap {
			w = &lateWriter{ResponseWriter: w, late: &stopping}
		}
		inner.ServeHTTP(w, r)
	})
	m.srv.StartTLS()
	fd := newFakeDriver("fake")
	cfg := testConfig(t, m, fd)
	cfg.Overlay, cfg.DNSUpstreams = true, []string{startUpstream(t)}
	cfg.Timing.PollEvery = time.Hour // the drain's end must wake the loop itself
	a, _ := runAgent(t, cfg)
	var ms *mesh
	waitFor(t, "the mesh", func() bool { a.mu.Lock(); defer a.mu.Unlock(); ms = a.mesh; return ms != nil })
	ms.mu.Lock()
	ms.port = 0 // the gateway's DNS on a port of its own, not 53
	ms.mu.Unlock()

	svc := service("web", 1)
	// Long enough that, on a loaded machine, the map's watch is surely
	// back before the drain ends; the order is what is checked.
	svc.DrainDelay = 3 * time.Second
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "web running", func() bool { return m.inState(types.TaskRunning, ids...) })

	subnet, slice, base := loopbackNet()
	replica := addrIn(base, 5)
	m.update(func() {
		m.netmap = api.NetworkMap{
			Networks: []api.MapNetwork{{Key: "app_default", App: "app", Subnet: subnet, Slices: map[string]string{a.NodeID(): slice}}},
			Services: []api.MapService{{App: "app", Name: "web", EndpointMode: types.EndpointDNSRR,
				Networks:  []api.MapAttachment{{Network: "app_default"}},
				Endpoints: []api.MapEndpoint{{TaskID: ids[0], Slot: 1, NodeID: a.NodeID(), Addresses: map[string]string{"app_default": replica}}}}},
		}
	})
	gw, asker := netip.MustParseAddr(addrIn(base, 1)), addrIn(base, 9)
	waitFor(t, "DNS on the gateway", func() bool { return ms.dnsAddr(gw) != nil })
	server := ms.dnsAddr(gw).String()
	waitFor(t, "web. to answer the replica", func() bool {
		return slices.Equal(answerA(askFrom(t, server, asker, "web.")), []string{replica})
	})

	stopping.Store(true)
	m.update(func() {
		m.netmap.Services[0].Endpoints = nil // types.Task.Serving: out at once
		if !down {
			m.tasks[ids[0]].DesiredState = types.DesiredShutdown
			return
		}
		m.apps["app"].Deleting = true
		delete(m.tasks, ids[0])
		m.order = nil
	})
	waitFor(t, "web. to answer no replica", func() bool { return len(answerA(askFrom(t, server, asker, "web."))) == 0 })
	fd.lock(func() {
		if len(fd.stops) != 0 {
			t.Errorf("the replica got its stop signal (%v) while DNS still answered it: no drain", fd.stops)
		}
	})
	waitFor(t, "web stopped after its drain", func() bool {
		n := 0
		fd.lock(func() { n = len(fd.stops) })
		return n == 1
	})
}

// lateWriter holds a response back 200 ms once late is set.
type lateWriter struct {
	http.ResponseWriter
	late *atomic.Bool
}

func (w *lateWriter) Write(b []byte) (int, error) {
	if w.late.Load() {
		time.Sleep(200 * time.Millisecond)
	}
	return w.ResponseWriter.Write(b)
}

// TestDrainNeverServed: a replica that never became healthy is out of the
// map already; it is stopped at once, with no drain to wait.
func TestDrainNeverServed(t *testing.T) {
	svc := service("web", 1)
	svc.Healthcheck = &types.Healthcheck{Test: []string{"CMD", "true"}}
	svc.DrainDelay = time.Hour
	l := &loop{a: &Agent{mesh: &mesh{}}, desired: &api.NodeTasks{Services: map[string]*types.Service{"app/web": svc}}}
	tests := []struct {
		name  string
		task  types.Task
		drain bool
	}{
		{"health starting", types.Task{ID: "a", State: types.TaskRunning, Health: types.HealthStarting}, false},
		{"unhealthy", types.Task{ID: "b", State: types.TaskRunning, Health: types.HealthUnhealthy}, false},
		{"not running yet", types.Task{ID: "c", State: types.TaskStarting}, false},
	}
	for _, tc := range tests {
		tc.task.App, tc.task.Service = "app", "web"
		if got := l.draining(&tc.task); got != tc.drain {
			t.Errorf("%s: draining = %v, want %v", tc.name, got, tc.drain)
		}
	}
	if (&loop{a: &Agent{}}).draining(&types.Task{State: types.TaskRunning}) {
		t.Error("draining without the mesh: Docker's DNS answers until the stop, a wait gains nothing")
	}
}

// TestDrainRemembered: a restarted agent finds the drain the last run
// started and waits only what is left of it.
func TestDrainRemembered(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first := st.drainUntil("t1", now, time.Minute, t.Logf)
	st.Close()
	if st, err = openStore(dir, false); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if again := st.drainUntil("t1", now.Add(30*time.Second), time.Minute, t.Logf); !again.Equal(first) {
		t.Errorf("after a restart the drain ends at %v, want the first run's %v", again, first)
	}
	if other := st.drainUntil("t2", now.Add(drainKeep+2*time.Minute), time.Second, t.Logf); other.Before(now.Add(drainKeep)) {
		t.Errorf("a new task's drain ends at %v", other)
	}
	if got := st.drainUntil("t1", now.Add(drainKeep+3*time.Minute), time.Second, t.Logf); got.Equal(first) {
		t.Error("a drain record long ended was kept")
	}
}

// TestDrainDown: `berth down` no longer lists the app's tasks (their spec
// is not sent either); a running one drains the delay its service had when
// it started here before it is stopped, one that is not healthy does not,
// nor does a task gone for any other reason.
func TestDrainDown(t *testing.T) {
	st, err := openStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := &mesh{}
	m.drains.remember("served", time.Hour)
	a := &Agent{mesh: m, log: slog.New(slog.DiscardHandler)}
	l := &loop{a: a, store: st, statusCh: make(chan driverStatus, 1), desired: &api.NodeTasks{Apps: map[string]*api.AppResources{"gone": {Deleting: true}}}}
	rec := func(id, app string, h types.Health) *taskRecord {
		return &taskRecord{id: id, local: localTask{App: app}, status: &driver.Status{TaskID: id, State: driver.StateRunning, Health: h}}
	}
	tests := []struct {
		name  string
		r     *taskRecord
		drain bool
	}{
		{"running task of a removed app", rec("served", "gone", types.HealthHealthy), true},
		{"unhealthy", rec("sick", "gone", types.HealthUnhealthy), false},
		{"app not being removed", rec("stray", "other", types.HealthNone), false},
	}
	for _, tc := range tests {
		if got := l.drainingGone(tc.r); got != tc.drain {
			t.Errorf("%s: drainingGone = %v, want %v", tc.name, got, tc.drain)
		}
	}
	if until, _ := m.drains.get("served"); time.Until(until) < 50*time.Minute {
		t.Errorf("the drain ends in %v, want the service's hour", time.Until(until))
	}
	m.drains.stop()
}
