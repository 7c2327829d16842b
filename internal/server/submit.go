package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// maxStopGrace bounds up -t: a grace longer than an hour is a typo, and
// a task stuck in stopping that long would hold its deploy.
const maxStopGrace = time.Hour

// submitOptions reads compose up's flags from a submission's query.
func submitOptions(q url.Values) (api.SubmitOptions, error) {
	var o api.SubmitOptions
	o.Services = splitNames(q.Get(api.QueryServices))
	o.Keep = splitNames(q.Get(api.QueryKeep))
	for key, dst := range map[string]*bool{api.QueryRemoveOrphans: &o.RemoveOrphans, api.QueryForceRecreate: &o.ForceRecreate, api.QueryNoRecreate: &o.NoRecreate} {
		switch v := q.Get(key); v {
		case "", "false", "0":
		case "true", "1":
			*dst = true
		default:
			return o, badRequest(key, "must be true or false, not %q", v)
		}
	}
	if o.ForceRecreate && o.NoRecreate {
		return o, badRequest(api.QueryForceRecreate, "cannot be used with %s; pick one", api.QueryNoRecreate)
	}
	grace, err := stopGrace(q)
	o.StopGrace = grace
	return o, err
}

// stopGrace reads up -t or down -t from a query (0: not given).
func stopGrace(q url.Values) (time.Duration, error) {
	v := q.Get(api.QueryStopGrace)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxStopGrace {
		return 0, badRequest(api.QueryStopGrace, "must be a duration from 0s to %s, not %q", maxStopGrace, v)
	}
	return d, nil
}

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// merged is what mergeSubmission tells the upsert.
type merged struct {
	// recreate are the services to give a new version even though their
	// spec did not change (--force-recreate).
	recreate []string
	// sealed are the secrets copied from the stored app for the services
	// kept: sealed already, they must not be sealed again.
	sealed []string
	// untouched are the services left as stored: not named, or orphans.
	untouched []string
}

// mergeSubmission is the app a submission of app with o makes of the
// stored app old (nil: none): compose up's meaning of a service subset, of
// orphans and of --no-recreate.
func mergeSubmission(old, app *types.App, o api.SubmitOptions) (merged, error) {
	var m merged
	for _, name := range o.Services {
		if app.Service(name) == nil {
			return m, badRequest(api.QueryServices, "app %s has no service %q; name one of its services", app.Name, name)
		}
	}
	if old == nil {
		old = &types.App{}
	}
	var services, kept []*types.Service
	keep := func(prev *types.Service) *types.Service {
		c := copyService(prev)
		kept = append(kept, c)
		return c
	}
	for _, svc := range app.Services {
		prev := old.Service(svc.Name)
		selected := len(o.Services) == 0 || slices.Contains(o.Services, svc.Name)
		switch {
		case !selected && prev == nil: // up web: db is not started
		case !selected:
			services = append(services, keep(prev))
			m.untouched = append(m.untouched, prev.Name)
		case prev != nil && o.NoRecreate:
			c := keep(prev)
			c.Replicas = svc.Replicas
			services = append(services, c)
		default:
			services = append(services, svc)
			if prev != nil && o.ForceRecreate {
				m.recreate = append(m.recreate, svc.Name)
			}
		}
	}
	for _, prev := range old.Services {
		// A one-off (berth run) is never an orphan: the file never has it.
		if app.Service(prev.Name) == nil && (prev.IsOneOff() || !o.RemoveOrphans || slices.Contains(o.Keep, prev.Name)) {
			services = append(services, keep(prev))
			m.untouched = append(m.untouched, prev.Name)
		}
	}
	app.Services = services
	for _, svc := range kept {
		m.sealed = append(m.sealed, keepResources(old, app, svc)...)
	}
	return m, nil
}

// keepResources copies into app the networks, volumes, configs and secrets
// of old that svc uses and app no longer defines (svc is a service kept as
// stored), so it still validates and runs; it returns the secrets copied.
func keepResources(old, app *types.App, svc *types.Service) (sealed []string) {
	for _, n := range svc.Networks {
		adopt(&app.Networks, old.Networks, n.Name)
	}
	for _, m := range svc.Mounts {
		if m.Type == types.MountVolume {
			adopt(&app.Volumes, old.Volumes, m.Source)
		}
	}
	for _, f := range svc.Configs {
		adopt(&app.Configs, old.Configs, f.Source)
	}
	for _, f := range svc.Secrets {
		if adopt(&app.Secrets, old.Secrets, f.Source) {
			sealed = append(sealed, f.Source)
		}
	}
	return sealed
}

// adopt copies from[name] into *to when *to lacks it, and says whether it
// did.
func adopt[T any](to *map[string]*T, from map[string]*T, name string) bool {
	def, ok := from[name]
	if !ok || (*to)[name] != nil {
		return false
	}
	if *to == nil {
		*to = map[string]*T{}
	}
	(*to)[name] = def
	return true
}

// copyService deep-copies a stored service (the view's values are shared)
// without the controller's verdict, which the store sets afresh, nor its
// lifecycle, which the store keeps for the untouched services itself.
func copyService(s *types.Service) *types.Service {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("server: copy service %s: %v", s.Name, err)) // plain data: cannot fail
	}
	var c types.Service
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("server: copy service %s: %v", s.Name, err))
	}
	c.Status, c.Lifecycle = nil, nil
	return &c
}
