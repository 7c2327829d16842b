package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// prepareUp applies up's --scale to app and returns the services up
// deploys: nil for all, else the arguments with (unless --no-deps) the
// services they depend on, in the file's order.
func prepareUp(app *types.App, o upOptions) ([]string, error) {
	for _, name := range append(slices.Clone(o.services), o.exitCodeFrom) {
		if name != "" && app.Service(name) == nil {
			return nil, fmt.Errorf("app %s has no service %s; name one of %s", app.Name, name, strings.Join(names(app.Services), ", "))
		}
	}
	if err := applyScale(app, o.scale); err != nil {
		return nil, err
	}
	if len(o.services) == 0 {
		return nil, nil
	}
	want := map[string]bool{}
	var add func(string)
	add = func(name string) {
		if want[name] {
			return
		}
		want[name] = true
		if svc := app.Service(name); svc != nil && !o.noDeps {
			for _, d := range svc.DependsOn {
				add(d.Service)
			}
		}
	}
	for _, name := range o.services {
		add(name)
	}
	var selected []string
	for _, svc := range app.Services {
		if want[svc.Name] {
			selected = append(selected, svc.Name)
		}
	}
	return selected, nil
}

// applyScale sets the replica counts --scale SERVICE=N gives.
func applyScale(app *types.App, scale []string) error {
	for _, s := range scale {
		name, count, ok := strings.Cut(s, "=")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || n < 0 {
			return fmt.Errorf("--scale %q: write SERVICE=N with N a number of replicas, 0 or more", s)
		}
		svc := app.Service(name)
		switch {
		case svc == nil:
			return fmt.Errorf("--scale %s: app %s has no service %s", s, app.Name, name)
		case svc.Mode == types.ModeGlobal:
			return fmt.Errorf("--scale %s: service %s is global (one task per node) and cannot be scaled", s, name)
		}
		svc.Replicas = n
	}
	return nil
}

// subsetApp is app with only the named services (all when names is nil);
// the services are shared, not copied.
func subsetApp(app *types.App, names []string) *types.App {
	if names == nil {
		return app
	}
	part := *app
	part.Services = nil
	for _, svc := range app.Services {
		if slices.Contains(names, svc.Name) {
			part.Services = append(part.Services, svc)
		}
	}
	return &part
}

func names(services []*types.Service) []string {
	out := make([]string, 0, len(services))
	for _, s := range services {
		out = append(out, s.Name)
	}
	return out
}

// orphans completes so with what docker compose does about the services
// the cluster runs for the app that the file lacks: those of profiles not
// enabled are left alone (so.Keep); the others, orphans, are removed with
// --remove-orphans, else kept with a warning naming them.
func (e *env) orphans(ctx context.Context, app, stored *types.App, so api.SubmitOptions) (api.SubmitOptions, error) {
	if stored == nil {
		return so, nil
	}
	var missing []string
	for _, svc := range stored.Services {
		// A one-off (berth run) is never in the file, and never an orphan.
		if app.Service(svc.Name) == nil && !svc.IsOneOff() {
			missing = append(missing, svc.Name)
		}
	}
	if len(missing) == 0 {
		return so, nil
	}
	disabled, err := e.disabledServices(ctx)
	if err != nil {
		return so, err
	}
	var orphans []string
	for _, name := range missing {
		if slices.Contains(disabled, name) {
			so.Keep = append(so.Keep, name)
		} else {
			orphans = append(orphans, name)
		}
	}
	if len(orphans) > 0 && !so.RemoveOrphans {
		fmt.Fprintf(e.stderr, "warning: found orphan services (%s) for app %s: if you removed or renamed them in your Compose file, run berth up --remove-orphans to remove them\n",
			strings.Join(orphans, ", "), app.Name)
	}
	return so, nil
}

// secondsOrDuration is a flag that takes SECONDS, as docker compose's
// --wait-timeout does, or a Go duration ("5m").
type secondsOrDuration time.Duration

func (d *secondsOrDuration) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		*d = secondsOrDuration(time.Duration(n) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("write SECONDS (300) or a duration (5m), not %q", s)
	}
	*d = secondsOrDuration(v)
	return nil
}

func (d *secondsOrDuration) String() string { return time.Duration(*d).String() }
func (d *secondsOrDuration) Type() string   { return "duration" }

// graceSeconds is -t/--timeout SECONDS, compose's stop grace; -1 until set,
// shown without a default in the help (the service's stop_grace_period is).
type graceSeconds int

func (g *graceSeconds) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("write a number of seconds, 0 or more, not %q", s)
	}
	*g = graceSeconds(n)
	return nil
}

func (g *graceSeconds) String() string {
	if *g < 0 {
		return ""
	}
	return strconv.Itoa(int(*g))
}

func (g *graceSeconds) Type() string { return "int" }
