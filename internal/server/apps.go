package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) error {
	_, leaderID := s.raft.Leader()
	writeJSON(w, http.StatusOK, api.Status{
		Version:  s.cfg.Version,
		NodeName: s.cfg.Name,
		Leader:   s.raft.IsLeader(),
		LeaderID: leaderID,
		Index:    s.store.View().Index(),
		DataDir:  s.cfg.DataDir,
		Dev:      s.cfg.Dev,
		PID:      os.Getpid(),
		// Unhealthy: see unhealthyRead.
		Unhealthy: s.diskProblem(),
	})
	return nil
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) error {
	idx, err := s.block(r, state.TableApps)
	if err != nil {
		return err
	}
	apps := s.store.View().Apps()
	out := make([]*types.App, 0, len(apps))
	for _, a := range apps {
		out = append(out, redact(a))
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) error {
	idx, err := s.block(r, state.TableApps)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	app := s.store.View().App(name)
	if app == nil {
		return notFound("app %q not found", name)
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, redact(app))
	return nil
}

func (s *Server) putApp(w http.ResponseWriter, r *http.Request) error {
	cmd, err := s.admitApp(w, r)
	if err != nil {
		return err
	}
	res, err := s.Commit(r.Context(), cmd)
	if errors.Is(err, state.ErrStale) {
		return &apiError{status: http.StatusConflict, msg: "app " + cmd.App.Name + " changed while this submission was read; run berth up again"}
	}
	if err != nil {
		return err
	}
	up := res.(*state.UpsertResult)
	writeJSON(w, http.StatusOK, api.SubmitResponse{
		App: redact(up.App), Changed: up.Changed, Unchanged: up.Unchanged, Removed: up.Removed, Index: up.App.ModifyIndex,
	})
	return nil
}

// admitApp reads a submitted app and checks it as a submission is (a
// dry run's too): compose up's flags in the query (submit.go), defaults,
// validation, limits, ports, sealed secrets. It returns the upsert to commit.
func (s *Server) admitApp(w http.ResponseWriter, r *http.Request) (*state.UpsertApp, error) {
	opts, err := submitOptions(r.URL.Query())
	if err != nil {
		return nil, err
	}
	var app types.App
	if err := decodeJSON(w, r, api.MaxAppBytes, &app); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	if app.Name == "" {
		app.Name = name
	}
	if app.Name != name {
		return nil, badRequest("name", "%q does not match the app name %q in the URL", app.Name, name)
	}
	if err := noOneOffs(&app, ""); err != nil { // run.go
		return nil, err
	}
	return s.admit(&app, opts)
}

// admit checks a submission of app with opts, merged with the stored app,
// and returns the upsert to commit: a PUT's, or berth run's (run.go).
func (s *Server) admit(app *types.App, opts api.SubmitOptions) (*state.UpsertApp, error) {
	name := app.Name
	cur := s.store.View().App(name)
	m, err := mergeSubmission(cur, app, opts)
	if err != nil {
		return nil, err
	}
	applyAppDefaults(app)
	if err := validateApp(app); err != nil {
		return nil, err
	}
	if err := s.checkAppLimits(app); err != nil {
		return nil, err
	}
	if err := checkIngressPorts(s.store.View().Apps(), app); err != nil {
		return nil, err
	}
	if err := s.sealSecrets(app, m.sealed); err != nil {
		return nil, err
	}
	if cur != nil && cur.Deleting {
		return nil, &apiError{status: http.StatusConflict, msg: "app " + name + " is being removed; wait for `berth down` to finish, then try again"}
	}
	cmd := &state.UpsertApp{App: app, Now: s.clock.Now(), Deploy: true, Recreate: m.recreate, Untouched: m.untouched, StopGrace: opts.StopGrace}
	if cur != nil {
		cmd.Base = cur.Version // the merge read cur: refused if another change came between
	}
	return cmd, nil
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	volumes := false
	switch v := r.URL.Query().Get("volumes"); v {
	case "", "false", "0":
	case "true", "1":
		volumes = true
	default:
		return badRequest("volumes", "must be true or false, not %q", v)
	}
	grace, err := stopGrace(r.URL.Query()) // submit.go
	if err != nil {
		return err
	}
	if s.store.View().App(name) == nil {
		return notFound("app %q not found", name)
	}
	if _, err := s.Commit(r.Context(), &state.DeleteApp{Name: name, Volumes: volumes, Now: s.clock.Now(), StopGrace: grace}); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}

func (s *Server) scale(w http.ResponseWriter, r *http.Request) error {
	var req api.ScaleRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	if req.Replicas < 0 {
		return badRequest("replicas", "must not be negative, not %d", req.Replicas)
	}
	appName, svcName := r.PathValue("name"), r.PathValue("service")
	app := s.store.View().App(appName)
	if app == nil {
		return notFound("app %q not found", appName)
	}
	svc := app.Service(svcName)
	if svc == nil {
		return notFound("app %s has no service %q", appName, svcName)
	}
	if svc.Mode == types.ModeGlobal {
		return badRequest("replicas", "service %s is global (one task per node) and cannot be scaled", svcName)
	}
	if svc.IsOneOff() {
		return badRequest("service", "%s is a one-off of berth run: it runs one task and cannot be scaled; berth run another", svcName)
	}
	if app.Deleting {
		return &apiError{status: http.StatusConflict, msg: "app " + appName + " is being removed"}
	}
	if err := s.checkScaleLimits(app, svcName, req.Replicas); err != nil {
		return err
	}
	if _, err := s.Commit(r.Context(), &state.ScaleService{App: appName, Service: svcName, Replicas: req.Replicas, Now: s.clock.Now()}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// redact returns a copy of the app without secret and config content: reads
// never return it; only the agents that run a task using it receive it.
func redact(a *types.App) *types.App {
	c := *a
	c.Secrets = redactSecrets(a.Secrets)
	c.Configs = redactSecrets(a.Configs)
	return &c
}

func redactSecrets(in map[string]*types.Secret) map[string]*types.Secret {
	if in == nil {
		return nil
	}
	out := make(map[string]*types.Secret, len(in))
	for k, v := range in {
		out[k] = &types.Secret{Name: v.Name, External: v.External}
	}
	return out
}

func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}

// sealSecrets replaces each secret's content with its sealed form before
// it reaches Raft (and so the disk), keeping a keyed digest of the
// plaintext so an unchanged secret leaves its services alone. The digest is
// keyed (not a bare SHA-256) because it sits in every manager's WAL, where
// a guessable secret could otherwise be guessed offline.
func (s *Server) sealSecrets(app *types.App, sealed []string) error {
	for name, sec := range app.Secrets {
		if slices.Contains(sealed, name) {
			continue // kept from the stored app (submit.go): sealed there
		}
		ad := []byte(adSecret + app.Name + "/" + name)
		sealed, err := s.creds.sealer.Seal(sec.Data, ad)
		if err != nil {
			return fmt.Errorf("seal secret %s: %w", name, err)
		}
		app.Secrets[name] = &types.Secret{Name: sec.Name, Data: sealed, Digest: s.creds.sealer.Digest(sec.Data, ad)}
	}
	return nil
}

// openSecret returns a secret's plaintext for the agent that mounts it.
func (s *Server) openSecret(app string, name string, sec *types.Secret) (*types.Secret, error) {
	if sec == nil {
		return nil, nil
	}
	plain, err := s.creds.sealer.Open(sec.Data, []byte(adSecret+app+"/"+name))
	if err != nil {
		return nil, fmt.Errorf("unseal secret %s of app %s: %w", name, app, err)
	}
	return &types.Secret{Name: sec.Name, Data: plain, Digest: sec.Digest}, nil
}
