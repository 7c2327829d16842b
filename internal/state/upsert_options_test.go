package state

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// TestUpsertAppRecreate: a service named in Recreate gets a new version
// and a deployment (with the stop grace of up -t) though its spec did not
// change; the others keep theirs.
func TestUpsertAppRecreate(t *testing.T) {
	h := newHarness(t)
	now := time.Unix(100, 0)
	h.mustApply(UpsertApp{App: testApp(), Now: now, Deploy: true})
	res := h.mustApply(UpsertApp{App: testApp(), Now: now, Deploy: true, Recreate: []string{"db"}, StopGrace: 4 * time.Second}).(*UpsertResult)
	if !slices.Equal(res.Changed, []string{"db"}) || !slices.Equal(res.Unchanged, []string{"api"}) {
		t.Fatalf("changed %v unchanged %v, want db recreated only", res.Changed, res.Unchanged)
	}
	app := h.store.View().App("web")
	if v := app.Service("db").Version; v != 2 {
		t.Errorf("db version %d, want 2", v)
	}
	if v := app.Service("api").Version; v != 1 {
		t.Errorf("api version %d, want 1", v)
	}
	d := h.store.View().Deployment(types.DeploymentID("web", "db", 2))
	if d == nil || d.FromVersion != 1 || d.StopGrace != 4*time.Second {
		t.Fatalf("deployment of db v2 = %+v, want 1 -> 2 with a 4s stop grace", d)
	}
}

// TestUpsertAppBase: an upsert merged with an app that changed since is
// refused with ErrStale, so it never undoes the change between; the
// controller's verdicts are no change.
func TestUpsertAppBase(t *testing.T) {
	h := newHarness(t)
	now := time.Unix(100, 0)
	h.mustApply(UpsertApp{App: testApp(), Now: now, Deploy: true})
	base := h.store.View().App("web").Version
	h.mustApply(SetServiceStatus{App: "web", AppVersion: base, Statuses: map[string]*types.ServiceStatus{
		"api": {Version: 1, State: types.ServiceUp}}})
	changed := testApp()
	changed.Service("api").Replicas = 5
	h.mustApply(UpsertApp{App: changed, Now: now, Deploy: true, Base: base})
	_, err := h.apply(UpsertApp{App: testApp(), Now: now, Deploy: true, Base: base})
	if !errors.Is(err, ErrStale) {
		t.Fatalf("upsert on a stale base: %v, want ErrStale", err)
	}
	if r := h.store.View().App("web").Service("api").Replicas; r != 5 {
		t.Errorf("api has %d replicas, want the 5 of the write between", r)
	}
}

// TestTaskUpdatesGrace: a task told to shut down with a grace keeps it.
func TestTaskUpdatesGrace(t *testing.T) {
	h := newHarness(t)
	now := time.Unix(100, 0)
	h.mustApply(UpsertApp{App: testApp(), Now: now})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1)}, Now: now})
	h.mustApply(TaskUpdates{Desired: map[string]types.TaskState{"t1": types.DesiredShutdown}, Grace: map[string]time.Duration{"t1": 2 * time.Second}, Now: now})
	if g := h.store.View().Task("t1").StopGrace; g != 2*time.Second {
		t.Errorf("stop grace %s, want 2s", g)
	}
}

// TestUpsertAppUntouchedStayStopped: up SERVICE... leaves a service it
// does not name stopped (berth stop), as Compose does; the named ones
// start again, as a submission starts what stop stopped.
func TestUpsertAppUntouchedStayStopped(t *testing.T) {
	h := newHarness(t)
	now := time.Unix(100, 0)
	h.mustApply(UpsertApp{App: testApp(), Now: now, Deploy: true})
	h.mustApply(StopServices{App: "web", Now: now})
	h.mustApply(UpsertApp{App: testApp(), Now: now, Deploy: true, Untouched: []string{"db"}})
	app := h.store.View().App("web")
	if !app.Service("db").IsStopped() {
		t.Error("db, untouched, was started")
	}
	if app.Service("api").IsStopped() {
		t.Error("api, submitted, stayed stopped")
	}
}
