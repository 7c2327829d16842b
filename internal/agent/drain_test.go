package agent

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestDrainBeforeStop: a replica told to stop is out of the node's DNS
// before its stop signal. The manager drops it from the network map in the
// same change that tells its node to stop it; the map reaches the node's
// mesh on its own watch. The test checks the order: once DNS no longer
// answers the replica, it has not been sent its stop signal yet; and then
// it is.
func TestDrainBeforeStop(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	cfg := testConfig(t, m, fd)
	cfg.Overlay, cfg.DNSUpstreams = true, []string{startUpstream(t)}
	a, _ := runAgent(t, cfg)
	var ms *mesh
	waitFor(t, "the mesh", func() bool { a.mu.Lock(); defer a.mu.Unlock(); ms = a.mesh; return ms != nil })
	ms.port = 0 // the gateway's DNS on a port of its own, not 53

	svc := service("web", 1)
	// Long enough that, on a loaded machine, the map's watch is surely
	// back before the drain ends; the order is what is checked.
	svc.DrainDelay = 3 * time.Second
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "web running", func() bool { return m.inState(types.TaskRunning, ids...) })

	subnet, slice, base := loopbackNet()
	replica := addrIn(base, 5)
	netMap := func(endpoints ...api.MapEndpoint) api.NetworkMap {
		return api.NetworkMap{
			Networks: []api.MapNetwork{{Key: "app_default", App: "app", Subnet: subnet, Slices: map[string]string{a.NodeID(): slice}}},
			Services: []api.MapService{{App: "app", Name: "web", EndpointMode: types.EndpointDNSRR,
				Networks: []api.MapAttachment{{Network: "app_default"}}, Endpoints: endpoints}},
		}
	}
	m.update(func() {
		m.netmap = netMap(api.MapEndpoint{TaskID: ids[0], Slot: 1, NodeID: a.NodeID(), Addresses: map[string]string{"app_default": replica}})
	})
	gateway := netip.MustParseAddr(addrIn(base, 1))
	asker := addrIn(base, 9)
	answers := func() []string {
		addr := ms.dnsAddr(gateway)
		if addr == nil {
			return nil
		}
		return answerA(askFrom(t, addr.String(), asker, "web."))
	}
	waitFor(t, "DNS to answer the replica", func() bool { return slices.Equal(answers(), []string{replica}) })

	m.update(func() { // one change, as the manager's Raft entry is
		m.netmap = netMap()
		m.tasks[ids[0]].DesiredState = types.DesiredShutdown
	})
	waitFor(t, "DNS to drop the replica", func() bool { return len(answers()) == 0 })
	fd.lock(func() {
		if len(fd.stops) != 0 {
			t.Errorf("the replica got its stop signal (%v) while DNS still answered it: no drain", fd.stops)
		}
	})
	waitFor(t, "web shut down after its drain", func() bool { return m.inState(types.TaskShutdown, ids...) })
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
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first := st.drainUntil("t1", now, time.Minute, t.Logf)
	st.Close()
	if st, err = openStore(dir); err != nil {
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
