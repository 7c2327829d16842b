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

// mergeSubmission is the app a submission of app with o makes of the
// stored app old (nil: none): compose up's meaning of a service subset, of
// orphans and of --no-recreate. It returns the services to give a new
// version even though their spec did not change (--force-recreate).
func mergeSubmission(old, app *types.App, o api.SubmitOptions) ([]string, error) {
	for _, name := range o.Services {
		if app.Service(name) == nil {
			return nil, badRequest(api.QueryServices, "app %s has no service %q; name one of its services", app.Name, name)
		}
	}
	if old == nil {
		old = &types.App{}
	}
	var services []*types.Service
	var recreate []string
	for _, svc := range app.Services {
		prev := old.Service(svc.Name)
		selected := len(o.Services) == 0 || slices.Contains(o.Services, svc.Name)
		switch {
		case !selected && prev == nil: // up web: db is not started
		case !selected:
			services = append(services, copyService(prev))
		case prev != nil && o.NoRecreate:
			kept := copyService(prev)
			kept.Replicas = svc.Replicas
			services = append(services, kept)
		default:
			services = append(services, svc)
			if prev != nil && o.ForceRecreate {
				recreate = append(recreate, svc.Name)
			}
		}
	}
	for _, prev := range old.Services {
		if app.Service(prev.Name) == nil && (!o.RemoveOrphans || slices.Contains(o.Keep, prev.Name)) {
			services = append(services, copyService(prev))
			keepResources(old, app, prev)
		}
	}
	app.Services = services
	return recreate, nil
}

// keepResources copies into app the networks and volumes of old that the
// kept service svc uses and app no longer defines, so it still validates.
func keepResources(old, app *types.App, svc *types.Service) {
	for _, n := range svc.Networks {
		if def, ok := old.Networks[n.Name]; ok && app.Networks[n.Name] == nil {
			if app.Networks == nil {
				app.Networks = map[string]*types.Network{}
			}
			app.Networks[n.Name] = def
		}
	}
	for _, m := range svc.Mounts {
		if m.Type != types.MountVolume {
			continue
		}
		if def, ok := old.Volumes[m.Source]; ok && app.Volumes[m.Source] == nil {
			if app.Volumes == nil {
				app.Volumes = map[string]*types.Volume{}
			}
			app.Volumes[m.Source] = def
		}
	}
}

// copyService deep-copies a stored service (the view's values are shared)
// without the controller's verdict, which the store sets afresh.
func copyService(s *types.Service) *types.Service {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("server: copy service %s: %v", s.Name, err)) // plain data: cannot fail
	}
	var c types.Service
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("server: copy service %s: %v", s.Name, err))
	}
	c.Status = nil
	return &c
}
