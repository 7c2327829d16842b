package state

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func TestUpsertAppVersions(t *testing.T) {
	tests := []struct {
		name       string
		change     func(a *types.App)
		appVersion uint64
		versions   map[string]uint64 // service -> version after the second upsert
		changed    []string
		unchanged  []string
		removed    []string
	}{
		{
			name:       "same app again changes nothing",
			change:     func(*types.App) {},
			appVersion: 1, versions: map[string]uint64{"api": 1, "db": 1},
			unchanged: []string{"api", "db"},
		},
		{
			name:       "replicas only bumps the app, not the service",
			change:     func(a *types.App) { a.Service("api").Replicas = 5 },
			appVersion: 2, versions: map[string]uint64{"api": 1, "db": 1},
			unchanged: []string{"api", "db"},
		},
		{
			name:       "changed env bumps the service",
			change:     func(a *types.App) { a.Service("api").Env["A"] = "2" },
			appVersion: 2, versions: map[string]uint64{"api": 2, "db": 1},
			changed: []string{"api"}, unchanged: []string{"db"},
		},
		{
			name:       "changed secret data bumps the service mounting it",
			change:     func(a *types.App) { a.Secrets["key"].Data = []byte("s2") },
			appVersion: 2, versions: map[string]uint64{"api": 2, "db": 1},
			changed: []string{"api"}, unchanged: []string{"db"},
		},
		{
			name: "removed and added services",
			change: func(a *types.App) {
				a.Services = []*types.Service{a.Service("api"), {Name: "cache", Image: "redis", Mode: types.ModeReplicated, Replicas: 1}}
			},
			appVersion: 2, versions: map[string]uint64{"api": 1, "cache": 1},
			changed: []string{"cache"}, unchanged: []string{"api"}, removed: []string{"db"},
		},
		{
			name:       "a new network bumps the app only",
			change:     func(a *types.App) { a.Networks = map[string]*types.Network{"back": {Name: "back"}} },
			appVersion: 2, versions: map[string]uint64{"api": 1, "db": 1},
			unchanged: []string{"api", "db"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustApply(UpsertApp{App: testApp(), Now: t0})
			app := testApp()
			tt.change(app)
			res := h.mustApply(UpsertApp{App: app, Now: t0.Add(time.Minute)}).(*UpsertResult)

			got := h.store.View().App("web")
			if got.Version != tt.appVersion {
				t.Errorf("app version = %d, want %d", got.Version, tt.appVersion)
			}
			for name, want := range tt.versions {
				if v := got.Service(name).Version; v != want {
					t.Errorf("service %s version = %d, want %d", name, v, want)
				}
			}
			checkNames(t, "changed", res.Changed, tt.changed)
			checkNames(t, "unchanged", res.Unchanged, tt.unchanged)
			checkNames(t, "removed", res.Removed, tt.removed)
			if got.CreateIndex != 1 || !got.CreatedAt.Equal(t0) {
				t.Errorf("creation = index %d at %v, want index 1 at %v", got.CreateIndex, got.CreatedAt, t0)
			}
			wantModify := uint64(2)
			if tt.appVersion == 1 {
				wantModify = 1 // nothing changed: nothing written
			}
			if got.ModifyIndex != wantModify || h.store.View().Index(TableApps) != wantModify {
				t.Errorf("modify index = %d, table index = %d, want %d", got.ModifyIndex, h.store.View().Index(TableApps), wantModify)
			}
		})
	}
}

func checkNames(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestUpsertAppRejectedWhileDeleting(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	h.mustApply(DeleteApp{Name: "web", Volumes: true})
	before := h.store.View().Index()

	_, err := h.apply(UpsertApp{App: testApp(), Now: t0})
	if err == nil || !strings.Contains(err.Error(), "being removed") {
		t.Fatalf("upsert of a deleting app: err = %v, want 'being removed'", err)
	}
	if idx := h.store.View().Index(); idx != before {
		t.Errorf("a rejected command moved the index from %d to %d", before, idx)
	}
	if app := h.store.View().App("web"); !app.Deleting || !app.RemoveVolumes {
		t.Errorf("app after rejected upsert: deleting=%v remove volumes=%v, want both", app.Deleting, app.RemoveVolumes)
	}
}

func TestUpsertAppIgnoresTeardownFields(t *testing.T) {
	h := newHarness(t)
	app := testApp()
	app.Deleting, app.TornDownOn = true, []string{"n1"}
	h.mustApply(UpsertApp{App: app, Now: t0})
	if got := h.store.View().App("web"); got.Deleting || got.TornDownOn != nil {
		t.Errorf("submitted teardown fields were stored: deleting=%v torn down on %v", got.Deleting, got.TornDownOn)
	}
}

func TestAppLifecycleErrors(t *testing.T) {
	tests := []struct {
		name     string
		cmd      Command
		notFound bool
		msg      string
	}{
		{"delete missing app", DeleteApp{Name: "nope"}, true, "app nope"},
		{"purge missing app", PurgeApp{Name: "nope"}, true, "app nope"},
		{"teardown of missing app", TeardownDone{App: "nope", NodeID: "n1"}, true, "app nope"},
		{"scale missing app", ScaleService{App: "nope", Service: "api", Replicas: 1}, true, "app nope"},
		{"scale missing service", ScaleService{App: "web", Service: "nope", Replicas: 1}, true, "service nope"},
		{"scale global service", ScaleService{App: "web", Service: "agent", Replicas: 2}, false, "global"},
		{"scale to negative", ScaleService{App: "web", Service: "api", Replicas: -1}, false, "0 or more"},
		{"upsert without name", UpsertApp{App: &types.App{}}, false, "no name"},
		{"upsert with a nil service", UpsertApp{App: &types.App{Name: "x", Services: []*types.Service{nil}}}, false, "service 1 has no name"},
		{"upsert with a duplicate service", UpsertApp{App: &types.App{Name: "x", Services: []*types.Service{{Name: "a"}, {Name: "a"}}}}, false, "defined twice"},
		{"upsert node without ID", UpsertNode{Node: &types.Node{Name: "x"}}, false, "no ID"},
		{"status of missing node", SetNodeStatus{ID: "nope", Status: types.NodeDown}, true, "node nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			app := testApp()
			app.Services = append(app.Services, &types.Service{Name: "agent", Image: "a", Mode: types.ModeGlobal})
			h.mustApply(UpsertApp{App: app, Now: t0})
			before := h.store.View().Index()

			_, err := h.apply(tt.cmd)
			if err == nil {
				t.Fatal("command accepted, want an error")
			}
			if errors.Is(err, ErrNotFound) != tt.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, !tt.notFound, tt.notFound)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if idx := h.store.View().Index(); idx != before {
				t.Errorf("a rejected command moved the index from %d to %d", before, idx)
			}
		})
	}
}

func TestScaleService(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	app := h.mustApply(ScaleService{App: "web", Service: "api", Replicas: 7}).(*types.App)
	if app.Service("api").Replicas != 7 || app.Version != 2 || app.Service("api").Version != 1 {
		t.Errorf("after scale: replicas %d, app version %d, service version %d; want 7, 2, 1",
			app.Service("api").Replicas, app.Version, app.Service("api").Version)
	}
	if got := h.store.View().App("web").Service("api").Replicas; got != 7 {
		t.Errorf("stored replicas = %d, want 7", got)
	}
	// Scaling to the same count writes nothing.
	h.mustApply(ScaleService{App: "web", Service: "api", Replicas: 7})
	if idx := h.store.View().Index(TableApps); idx != 2 {
		t.Errorf("apps index after a no-op scale = %d, want 2", idx)
	}
}

func TestDeleteTeardownPurge(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1), testTask("t2", "db", 1)}, Now: t0})
	h.mustApply(UpsertApp{App: &types.App{Name: "other"}, Now: t0})
	h.mustApply(TaskUpdates{Create: []*types.Task{{ID: "o1", App: "other", Service: "x", Slot: 1}}, Now: t0})

	app := h.mustApply(DeleteApp{Name: "web", Volumes: true}).(*types.App)
	if !app.Deleting || !app.RemoveVolumes {
		t.Fatalf("after delete: deleting=%v remove volumes=%v", app.Deleting, app.RemoveVolumes)
	}
	// A plain `down` after `down -v` keeps removing volumes.
	if app := h.mustApply(DeleteApp{Name: "web"}).(*types.App); !app.RemoveVolumes {
		t.Error("a second delete without volumes cleared RemoveVolumes")
	}
	h.mustApply(TeardownDone{App: "web", NodeID: "n1"})
	app = h.mustApply(TeardownDone{App: "web", NodeID: "n1"}).(*types.App)
	h.mustApply(TeardownDone{App: "web", NodeID: "n2"})
	if got := h.store.View().App("web").TornDownOn; !slices.Equal(got, []string{"n1", "n2"}) {
		t.Errorf("torn down on %v, want [n1 n2]", got)
	}
	if !slices.Equal(app.TornDownOn, []string{"n1"}) {
		t.Errorf("a repeated teardown changed the app: %v", app.TornDownOn)
	}

	h.mustApply(PurgeApp{Name: "web"})
	v := h.store.View()
	if v.App("web") != nil || len(v.Tasks(TaskFilter{App: "web"})) != 0 {
		t.Errorf("purge left app %v and tasks %v", v.App("web"), v.Tasks(TaskFilter{App: "web"}))
	}
	if v.App("other") == nil || v.Task("o1") == nil {
		t.Error("purge of web removed another app's data")
	}
}

// Verdicts are the controller's: a submission cannot set one, an unchanged
// submission keeps the stored one, a changed one drops it, and a verdict
// judged on an older app version is not stored.
func TestServiceStatus(t *testing.T) {
	h := newHarness(t)
	app := testApp()
	app.Services[0].Status = &types.ServiceStatus{Version: 1, State: types.ServiceUp}
	h.mustApply(UpsertApp{App: app, Now: t0})
	if st := h.store.View().App("web").Service("api").Status; st != nil {
		t.Fatalf("submitted status stored: %+v", st)
	}
	up := &types.ServiceStatus{Version: 1, State: types.ServiceUp, Since: t0}
	h.mustApply(SetServiceStatus{App: "web", AppVersion: 1, Statuses: map[string]*types.ServiceStatus{"api": up, "gone": up}})
	if st := h.store.View().App("web").Service("api").Status; st == nil || st.State != types.ServiceUp {
		t.Fatalf("verdict not stored: %+v", st)
	}
	h.mustApply(UpsertApp{App: testApp(), Now: t0}) // unchanged
	if st := h.store.View().App("web").Service("api").Status; st == nil {
		t.Fatalf("an unchanged submission dropped the verdict")
	}
	changed := testApp()
	changed.Services[1].Replicas = 3
	h.mustApply(UpsertApp{App: changed, Now: t0})
	got := h.store.View().App("web")
	if got.Service("api").Status != nil || got.Version != 2 {
		t.Fatalf("after a changed submission: version %d, api status %+v", got.Version, got.Service("api").Status)
	}
	h.mustApply(SetServiceStatus{App: "web", AppVersion: 1, Statuses: map[string]*types.ServiceStatus{"api": up}})
	if st := h.store.View().App("web").Service("api").Status; st != nil {
		t.Fatalf("stale verdict stored: %+v", st)
	}
	wrongVersion := &types.ServiceStatus{Version: 7, State: types.ServiceUp}
	h.mustApply(SetServiceStatus{App: "web", AppVersion: 2, Statuses: map[string]*types.ServiceStatus{"api": wrongVersion}})
	if st := h.store.View().App("web").Service("api").Status; st != nil {
		t.Fatalf("verdict on another service version stored: %+v", st)
	}
}
