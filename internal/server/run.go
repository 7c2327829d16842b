package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// berth run (api/run.go): a one-off is a service of the app marked
// types.OneOff, made here from the Compose file's service and the run's
// flags, and submitted as `berth up SERVICE`'s dependencies plus the
// one-off would be (the same checks, limits and sealing as any
// submission). Its task is placed by the scheduler as any other; the
// controller never restarts it; berth up keeps it (submit.go); RemoveRuns
// removes it (runOneOff's --rm, berth rm, and down with the app).

// runOneOff answers POST /v1/apps/{name}/runs.
func (s *Server) runOneOff(w http.ResponseWriter, r *http.Request) error {
	var req api.RunRequest
	if err := decodeJSON(w, r, api.MaxAppBytes, &req); err != nil {
		return err
	}
	app, err := runApp(r.PathValue("name"), req)
	if err != nil {
		return err
	}
	if err := s.freeRunName(app, req.Name); err != nil {
		return err
	}
	one, err := makeOneOff(app.Service(req.Service), req)
	if err != nil {
		return err
	}
	if err := s.checkRunPorts(app.Name, one); err != nil {
		return err
	}
	selected := []string{one.Name}
	if !req.NoDeps {
		selected = append(dependencies(app, req.Service), one.Name)
	}
	app.Services = append(app.Services, one)
	cmd, err := s.admit(app, api.SubmitOptions{Services: selected})
	if err != nil {
		return err
	}
	res, err := s.Commit(r.Context(), cmd)
	if errors.Is(err, state.ErrStale) {
		return &apiError{status: http.StatusConflict, msg: "app " + app.Name + " changed while this run was read; run berth run again"}
	}
	if err != nil {
		return err
	}
	up := res.(*state.UpsertResult)
	writeJSON(w, http.StatusCreated, api.RunResponse{Service: one.Name, App: redact(up.App), Index: up.App.ModifyIndex})
	return nil
}

// runApp checks a run request's app and service, naming the field.
func runApp(name string, req api.RunRequest) (*types.App, error) {
	app := req.App
	if app == nil {
		return nil, badRequest("app", "the app is required, as berth up sends it")
	}
	if app.Name == "" {
		app.Name = name
	}
	if app.Name != name {
		return nil, badRequest("app.name", "%q does not match the app name %q in the URL", app.Name, name)
	}
	if err := noOneOffs(app, "app."); err != nil {
		return nil, err
	}
	if req.Service == "" {
		return nil, badRequest("service", "name the service to run")
	}
	if app.Service(req.Service) == nil {
		return nil, badRequest("service", "app %s has no service %q; name one of %s", app.Name, req.Service, strings.Join(serviceNames(app), ", "))
	}
	return app, checkRunArgs(req)
}

// checkRunArgs bounds the command and environment as an exec's are, and
// checks -e and -p.
func checkRunArgs(req api.RunRequest) error {
	size := len(req.User) + len(req.WorkDir) + len(req.Name)
	for _, l := range []struct {
		field string
		list  []string
	}{{"command", req.Command}, {"entrypoint", req.Entrypoint}, {"env", req.Env}, {"publish", req.Publish}} {
		if len(l.list) > api.MaxExecArgs {
			return badRequest(l.field, "%d entries, at most %d", len(l.list), api.MaxExecArgs)
		}
		for _, a := range l.list {
			size += len(a)
		}
	}
	if size > api.MaxExecBytes {
		return badRequest("command", "the command, environment and flags are %d bytes, at most %d", size, api.MaxExecBytes)
	}
	for i, kv := range req.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return badRequest(fmt.Sprintf("env[%d]", i), "%q is not KEY=VALUE", kv)
		}
	}
	for i, p := range req.Publish {
		if _, err := api.ParsePublish(p); err != nil {
			return badRequest(fmt.Sprintf("publish[%d]", i), "%v", err)
		}
	}
	if req.Name != "" && !nameRE.MatchString(req.Name) {
		return badRequest("name", "%q is not a valid name: use letters, digits, '.', '-' and '_', at most 63", req.Name)
	}
	if req.WorkDir != "" && !strings.HasPrefix(req.WorkDir, "/") {
		return badRequest("workdir", "%q is not an absolute path", req.WorkDir)
	}
	return nil
}

// noOneOffs refuses a submitted service marked one-off: only a run makes
// one (field prefix: where the app sits in the request).
func noOneOffs(app *types.App, prefix string) error {
	for i, svc := range app.Services {
		if svc != nil && svc.OneOff != nil {
			return badRequest(fmt.Sprintf("%sservices[%d].one_off", prefix, i), "only berth run makes one-offs; leave the field out")
		}
	}
	return nil
}

// freeRunName refuses a --name that a service of the file or of the
// cluster's app already has.
func (s *Server) freeRunName(app *types.App, name string) error {
	if name == "" {
		return nil
	}
	cur := s.store.View().App(app.Name)
	if app.Service(name) != nil || (cur != nil && cur.Service(name) != nil) {
		return &apiError{status: http.StatusConflict, field: "name", msg: fmt.Sprintf("name: app %s already has a service or one-off %s; pick another --name, or remove it with berth rm", app.Name, name)}
	}
	return nil
}

// checkRunPorts refuses a one-off's published port that a service of the
// app the cluster runs publishes already (checkIngressPorts sees to other
// apps'): docker compose run --service-ports fails on it too, as the port
// is taken.
func (s *Server) checkRunPorts(appName string, one *types.Service) error {
	cur := s.store.View().App(appName)
	if cur == nil {
		return nil
	}
	for i, p := range one.Ports {
		for _, svc := range cur.Services {
			for _, q := range svc.Ports {
				if p.Published != 0 && p.Published == q.Published && p.Protocol == q.Protocol {
					return &apiError{status: http.StatusConflict, field: "publish",
						msg: fmt.Sprintf("publish: port %d/%s (port %d of the one-off) is published by %s already; publish another with -p, or drop --service-ports", p.Published, p.Protocol, i+1, svc.Name)}
				}
			}
		}
	}
	return nil
}

// maxRunBase is how much of the service's name a one-off's name keeps, so
// "-run-" and twelve hex digits still fit a service name's 63.
const maxRunBase = 63 - len("-run-") - 12

// makeOneOff is the one-off of base that req asks for: compose run's
// changes to the service (docker/compose pkg/compose/run.go): one replica,
// no restart, no ports unless asked, no aliases, the run's command, user,
// directory, environment and terminal.
func makeOneOff(base *types.Service, req api.RunRequest) (*types.Service, error) {
	one := copyService(base) // submit.go
	one.Name = req.Name
	if one.Name == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("name the one-off: %w", err)
		}
		one.Name = types.OneOffName(base.Name[:min(len(base.Name), maxRunBase)], hex.EncodeToString(b[:]))
	}
	one.OneOff = &types.OneOff{Of: base.Name}
	one.Mode, one.Replicas = types.ModeReplicated, 1
	one.RestartPolicy = types.RestartPolicy{Condition: types.RestartNone}
	one.UpdateConfig, one.RollbackConfig, one.Canary = nil, nil, nil
	one.Version, one.SpecHash = 0, ""
	if req.NoDeps {
		one.DependsOn = nil
	}
	for i := range one.Networks {
		one.Networks[i].Aliases = nil // compose run --use-aliases, which berth has not
	}
	if len(req.Entrypoint) > 0 {
		one.Entrypoint, one.Command = req.Entrypoint, nil
	}
	if len(req.Command) > 0 {
		one.Command = req.Command
	}
	if req.User != "" {
		one.User = req.User
	}
	if req.WorkDir != "" {
		one.WorkingDir = req.WorkDir
	}
	if len(req.Env) > 0 {
		one.Env = maps.Clone(one.Env)
		if one.Env == nil {
			one.Env = map[string]string{}
		}
		for _, kv := range req.Env {
			k, v, _ := strings.Cut(kv, "=")
			one.Env[k] = v
		}
	}
	if !req.ServicePorts {
		one.Ports = nil
	}
	for _, spec := range req.Publish {
		p, _ := api.ParsePublish(spec) // checked by checkRunArgs
		one.Ports = append(one.Ports, p)
	}
	one.Tty, one.StdinOpen = req.TTY, req.Interactive
	return one, nil
}

// dependencies are the services name depends on, and theirs, in the
// app's order: what `berth up SERVICE` starts besides SERVICE.
func dependencies(app *types.App, name string) []string {
	want := map[string]bool{}
	var add func(string)
	add = func(n string) {
		svc := app.Service(n)
		if svc == nil {
			return
		}
		for _, d := range svc.DependsOn {
			if !want[d.Service] && d.Service != name {
				want[d.Service] = true
				add(d.Service)
			}
		}
	}
	add(name)
	var out []string
	for _, svc := range app.Services {
		if want[svc.Name] {
			out = append(out, svc.Name)
		}
	}
	return out
}

func serviceNames(app *types.App) []string {
	out := make([]string, 0, len(app.Services))
	for _, svc := range app.Services {
		out = append(out, svc.Name)
	}
	return out
}

// removeRun answers DELETE /v1/apps/{name}/runs/{service}: berth run
// --rm's end (and its Ctrl-C), through state.RemoveRuns.
func (s *Server) removeRun(w http.ResponseWriter, r *http.Request) error {
	name, service := r.PathValue("name"), r.PathValue("service")
	app := s.store.View().App(name)
	if app == nil {
		return notFound("app %q not found", name)
	}
	svc := app.Service(service)
	switch {
	case svc == nil:
		return notFound("app %s has no one-off %q; see berth ps -a", name, service)
	case !svc.IsOneOff():
		return badRequest("service", "%s is a service of the Compose file, not a one-off of berth run; berth stop or rm it", service)
	}
	res, err := s.Commit(r.Context(), &state.RemoveRuns{App: name, Services: []string{service}, Now: s.clock.Now()})
	if err != nil {
		return err
	}
	rr := res.(*state.RemoveRunsResult)
	writeJSON(w, http.StatusOK, api.RemoveRunResponse{Removed: slices.Contains(rr.Removed, service), Stopping: slices.Contains(rr.Stopping, service)})
	return nil
}

// taskAttach forwards berth run's attach to the agent of the task's node,
// framed and full duplex as an exec (exec.go).
func (s *Server) taskAttach(w http.ResponseWriter, r *http.Request) error {
	if v := r.URL.Query().Get("size"); v != "" {
		if _, _, err := api.ParseResize([]byte(v)); err != nil {
			return badRequest("size", "%q is not ROWSxCOLS", v)
		}
	}
	return s.duplexToAgent(w, r, api.PathAgentTaskAttach, "an attach")
}
