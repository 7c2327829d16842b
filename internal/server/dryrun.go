package server

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// planApp is `berth up --dry-run`: the submission is checked as a real
// one and applied to a throwaway copy of the store (state.Store.DryRun),
// so the plan is what UpsertApp would do; nothing is committed.
func (s *Server) planApp(w http.ResponseWriter, r *http.Request) error {
	cmd, err := s.admitApp(w, r)
	if err != nil {
		return err
	}
	app := cmd.App
	view := s.store.View()
	old := view.App(app.Name)
	res, err := s.store.DryRun(cmd)
	if err != nil {
		return badRequest("", "%s", err.Error())
	}
	up, ok := res.(*state.UpsertResult)
	if !ok {
		return fmt.Errorf("plan app %s: the store returned %T", app.Name, res)
	}
	writeJSON(w, http.StatusOK, buildPlan(view, old, up))
	return nil
}

// buildPlan says what the upsert up does to each service of the app old
// (nil: a new app), with the tasks it starts and stops.
func buildPlan(view *state.View, old *types.App, up *state.UpsertResult) *api.Plan {
	p := &api.Plan{App: up.App.Name, Services: []api.ServicePlan{}}
	for _, svc := range up.App.Services {
		sp := api.ServicePlan{Name: svc.Name, ToVersion: svc.Version}
		var prev *types.Service
		if old != nil {
			prev = old.Service(svc.Name)
		}
		running := 0
		if prev != nil {
			sp.FromVersion = prev.Version
			running = wantedTasks(view, up.App.Name, svc.Name)
		}
		want := svc.Replicas
		if svc.Mode == types.ModeGlobal {
			want = running // one per eligible node, as now
		}
		switch {
		case prev == nil:
			sp.Action, sp.Start = api.PlanCreate, want
		case slices.Contains(up.Changed, svc.Name):
			sp.Action, sp.Fields, sp.Start, sp.Stop = api.PlanUpdate, changedFields(old, up.App, prev, svc), want, running
		case want != running:
			sp.Action, sp.Start, sp.Stop = api.PlanScale, max(want-running, 0), max(running-want, 0)
		default:
			sp.Action = api.PlanUnchanged
		}
		p.Services = append(p.Services, sp)
	}
	for _, name := range up.Removed {
		prev := old.Service(name)
		p.Services = append(p.Services, api.ServicePlan{Name: name, Action: api.PlanRemove, FromVersion: prev.Version,
			Stop: wantedTasks(view, old.Name, name)})
	}
	return p
}

// wantedTasks counts a service's tasks that run or are about to.
func wantedTasks(view *state.View, app, service string) int {
	n := 0
	for _, t := range view.Tasks(state.TaskFilter{App: app, Service: service}) {
		if t.DesiredState == types.DesiredRunning && !t.State.Terminal() {
			n++
		}
	}
	return n
}

// changedFields names the spec fields (JSON names) that differ between two
// versions of a service, and the mounted secrets and configs whose content
// changed ("secret NAME", "config NAME").
func changedFields(oldApp, newApp *types.App, prev, next *types.Service) []string {
	a, b := specFields(prev), specFields(next)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(union(a, b))) {
		if string(a[k]) != string(b[k]) {
			out = append(out, k)
		}
	}
	for _, kind := range []struct {
		name     string
		refs     []types.FileRef
		old, new map[string]*types.Secret
	}{{"secret", next.Secrets, oldApp.Secrets, newApp.Secrets}, {"config", next.Configs, oldApp.Configs, newApp.Configs}} {
		for _, ref := range kind.refs {
			if o, n := kind.old[ref.Source], kind.new[ref.Source]; o != nil && n != nil && contentOf(o) != contentOf(n) {
				out = append(out, kind.name+" "+ref.Source)
			}
		}
	}
	return out
}

// contentOf identifies a secret's content: its digest once sealed.
func contentOf(s *types.Secret) string {
	if s.Digest != "" {
		return s.Digest
	}
	return string(s.Data)
}

func specFields(s *types.Service) map[string]json.RawMessage {
	c := *s
	c.Version, c.SpecHash, c.Status, c.Replicas = 0, "", nil, 0
	c.UpdateConfig, c.RollbackConfig, c.Canary = nil, nil, nil // not hashed: they roll nothing
	b, _ := json.Marshal(&c)
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(b, &m)
	return m
}

func union(a, b map[string]json.RawMessage) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}
