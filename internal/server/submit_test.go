package server

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestMergeSubmission: compose up's meaning of a service subset, orphans,
// profiles not enabled, --no-recreate and --force-recreate, on the app the
// store holds.
func TestMergeSubmission(t *testing.T) {
	stored := func() *types.App {
		return &types.App{Name: "shop", Services: []*types.Service{
			{Name: "web", Image: "web:1", Replicas: 2, Version: 3, Status: &types.ServiceStatus{State: types.ServiceUp}},
			{Name: "db", Image: "db:1", Replicas: 1, Version: 1},
			{Name: "old", Image: "old:1", Replicas: 1, Version: 1, Networks: []types.NetworkAttachment{{Name: "legacy"}}},
			{Name: "debug", Image: "debug:1", Replicas: 1, Version: 1},
		}, Networks: map[string]*types.Network{"legacy": {Name: "legacy"}}}
	}
	file := func() *types.App { // web's image moved on; worker is new; old and debug are gone
		return &types.App{Name: "shop", Services: []*types.Service{
			{Name: "web", Image: "web:2", Replicas: 4}, {Name: "db", Image: "db:1", Replicas: 1}, {Name: "worker", Image: "worker:1", Replicas: 1},
		}}
	}
	tests := []struct {
		name     string
		opts     api.SubmitOptions
		images   map[string]string // service -> image of the merged app; a service absent is not in it
		recreate []string
	}{
		{"orphans are kept", api.SubmitOptions{},
			map[string]string{"web": "web:2", "db": "db:1", "worker": "worker:1", "old": "old:1", "debug": "debug:1"}, nil},
		{"--remove-orphans keeps a disabled profile's service", api.SubmitOptions{RemoveOrphans: true, Keep: []string{"debug"}},
			map[string]string{"web": "web:2", "db": "db:1", "worker": "worker:1", "debug": "debug:1"}, nil},
		{"a subset leaves the others as stored and starts no new one", api.SubmitOptions{Services: []string{"db"}},
			map[string]string{"web": "web:1", "db": "db:1", "old": "old:1", "debug": "debug:1"}, nil},
		{"--no-recreate keeps the stored spec", api.SubmitOptions{NoRecreate: true, RemoveOrphans: true},
			map[string]string{"web": "web:1", "db": "db:1", "worker": "worker:1"}, nil},
		{"--force-recreate names the stored services applied", api.SubmitOptions{ForceRecreate: true, Services: []string{"db", "worker"}, RemoveOrphans: true},
			map[string]string{"web": "web:1", "db": "db:1", "worker": "worker:1"}, []string{"db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := file()
			m, err := mergeSubmission(stored(), app, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range app.Services {
				got[s.Name] = s.Image
				if s.Status != nil {
					t.Errorf("service %s kept the stored verdict", s.Name)
				}
			}
			if !maps.Equal(got, tt.images) {
				t.Errorf("merged services %v, want %v", got, tt.images)
			}
			if !slices.Equal(m.recreate, tt.recreate) {
				t.Errorf("recreate %v, want %v", m.recreate, tt.recreate)
			}
			if _, ok := got["old"]; ok && app.Networks["legacy"] == nil {
				t.Error("old is kept without its network")
			}
			if web := app.Service("web"); tt.opts.NoRecreate && web.Replicas != 4 {
				t.Errorf("--no-recreate: web has %d replicas, want the file's 4", web.Replicas)
			}
		})
	}
}

// TestSubmitOptionsThroughAPI: up's flags reach the store through the
// submit handler (a subset, orphans kept then removed, force-recreate as
// a new version, the stop grace on its deployment), and bad ones are 400s
// naming the field.
func TestSubmitOptionsThroughAPI(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	// A node that never reports teardowns: the removed app stays (Deleting)
	// for the check at the end, where with no node at all the reconciler
	// could purge it first.
	nc, _ := joinNode(t, s, "n1")
	if _, err := nc.RegisterNode(ctx, types.Node{Name: "n1", Address: "127.0.0.1:1", Drivers: []string{"exec"}}); err != nil {
		t.Fatal(err)
	}
	app := func(services ...*types.Service) *types.App { return &types.App{Name: "opts", Services: services} }
	web := func(image string) *types.Service { return &types.Service{Name: "web", Image: image, Replicas: 1} }
	db := &types.Service{Name: "db", Image: "db:1", Replicas: 1, Secrets: []types.FileRef{{Source: "key", Target: "/run/secrets/key"}}}
	first := app(web("web:1"), db)
	first.Secrets = map[string]*types.Secret{"key": {Name: "key", Data: []byte("s3cret")}}
	if _, err := c.SubmitApp(ctx, first); err != nil {
		t.Fatal(err)
	}
	// up db with web's image moved on: web is left as it runs.
	moved := app(web("web:2"), db)
	moved.Secrets = map[string]*types.Secret{"key": {Name: "key", Data: []byte("s3cret")}}
	res, err := c.SubmitAppWith(ctx, moved, api.SubmitOptions{Services: []string{"db"}})
	if err != nil {
		t.Fatal(err)
	}
	if img := res.App.Service("web").Image; img != "web:1" {
		t.Errorf("up db changed web's image to %s", img)
	}
	// web alone in the file: db is an orphan, kept, then removed.
	res, err = c.SubmitAppWith(ctx, app(web("web:1")), api.SubmitOptions{})
	if err != nil || res.App.Service("db") == nil || len(res.Removed) != 0 {
		t.Fatalf("orphan db not kept: %+v %v", res, err)
	}
	// The orphan keeps the secret the file no longer defines, sealed once.
	stored := s.store.View().App("opts")
	if plain, err := s.openSecret("opts", "key", stored.Secrets["key"]); err != nil || string(plain.Data) != "s3cret" {
		t.Errorf("the kept db's secret opens to %v, %v; want s3cret", plain, err)
	}
	res, err = c.SubmitAppWith(ctx, app(web("web:1")), api.SubmitOptions{RemoveOrphans: true})
	if err != nil || res.App.Service("db") != nil || !slices.Equal(res.Removed, []string{"db"}) {
		t.Fatalf("--remove-orphans left db: %+v %v", res, err)
	}
	before := res.App.Service("web").Version
	res, err = c.SubmitAppWith(ctx, app(web("web:1")), api.SubmitOptions{ForceRecreate: true, StopGrace: 7e9})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.App.Service("web").Version; v != before+1 || !slices.Equal(res.Changed, []string{"web"}) {
		t.Errorf("--force-recreate: web version %d -> %d, changed %v; want a new version", before, v, res.Changed)
	}
	d := s.store.View().Deployment(types.DeploymentID("opts", "web", before+1))
	if d == nil || d.StopGrace != 7e9 {
		t.Errorf("deployment of the recreated web = %+v, want stop grace 7s", d)
	}

	base := "http://" + s.Addr() + "/v1/apps/opts"
	body, _ := json.Marshal(app(web("web:1")))
	for _, tc := range []struct{ query, field string }{
		{"services=nosuch", "services"},
		{"force_recreate=true&no_recreate=true", "force_recreate"},
		{"remove_orphans=maybe", "remove_orphans"},
		{"stop_grace=soon", "stop_grace"},
		{"stop_grace=5h", "stop_grace"},
	} {
		req, _ := http.NewRequest("PUT", base+"?"+tc.query, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+s.AdminToken())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb api.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != 400 || eb.Field != tc.field {
			t.Errorf("?%s: %d %+v, want 400 naming %s", tc.query, resp.StatusCode, eb, tc.field)
		}
	}
	err = c.DeleteAppWith(ctx, "opts", api.DeleteOptions{StopGrace: 3e9})
	if err != nil {
		t.Fatal(err)
	}
	if a := s.store.View().App("opts"); a == nil || a.StopGrace != 3e9 {
		t.Errorf("down -t 3: app %+v, want stop grace 3s", a)
	}
}
