package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	app, service := q.Get("app"), q.Get("service")
	if service != "" && app == "" {
		return badRequest("service", "needs app: a service is named within its app")
	}
	idx, err := s.block(r, state.TableDeployments)
	if err != nil {
		return err
	}
	ds := s.store.View().Deployments(app, service)
	out := make([]*api.Deployment, 0, len(ds))
	for _, d := range ds {
		out = append(out, wireDeployment(d))
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// wireDeployment is the API's form of a stored deployment.
func wireDeployment(d *types.Deployment) *api.Deployment {
	cfg := d.Config.Effective()
	par := 0
	if cfg.Parallelism != nil {
		par = *cfg.Parallelism
	}
	canaries := 0
	if d.Canary != nil {
		canaries = d.Canary.Count
	}
	return &api.Deployment{
		Canaries: canaries, Promoted: d.Promoted,
		ID: d.ID, App: d.App, Service: d.Service, FromVersion: d.FromVersion, ToVersion: d.ToVersion,
		Rollback: d.Rollback, State: string(d.State),
		Updated: d.Updated, Healthy: d.Healthy, Total: d.Total, Failed: d.Failed,
		Parallelism: par, Order: cfg.Order, Delay: cfg.Delay, Monitor: cfg.Monitor,
		MaxFailureRatio: cfg.MaxFailureRatio, FailureAction: cfg.FailureAction,
		ReasonCode: d.ReasonCode, Reason: d.Reason, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

// promoteService is `berth deploy promote SERVICE`: the canaries of the
// service's current deployment are promoted.
func (s *Server) promoteService(w http.ResponseWriter, r *http.Request) error {
	app, svc, err := s.liveService(r)
	if err != nil {
		return err
	}
	d := s.store.View().CurrentDeployment(app.Name, svc.Name, svc.Version)
	switch {
	case d == nil || d.Canary == nil || d.Canary.Count == 0:
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("the current version of %s has no canaries to promote", svc.Name)}
	case !d.State.Live():
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("the deployment of %s version %d has ended (%s); there is nothing to promote", svc.Name, svc.Version, d.State)}
	}
	res, err := s.Commit(r.Context(), &state.PromoteDeployment{ID: d.ID, Now: s.clock.Now()})
	if err != nil {
		return err
	}
	done, ok := res.(*types.Deployment)
	if !ok {
		return fmt.Errorf("promote the canaries of %s: the manager returned %T", svc.Name, res)
	}
	writeJSON(w, http.StatusOK, wireDeployment(done))
	return nil
}

// liveService is the app and service a request names, of an app not
// being removed.
func (s *Server) liveService(r *http.Request) (*types.App, *types.Service, error) {
	appName, svcName := r.PathValue("name"), r.PathValue("service")
	app := s.store.View().App(appName)
	if app == nil {
		return nil, nil, notFound("app %q not found", appName)
	}
	svc := app.Service(svcName)
	if svc == nil {
		return nil, nil, notFound("app %s has no service %q", appName, svcName)
	}
	if app.Deleting {
		return nil, nil, &apiError{status: http.StatusConflict, msg: "app " + appName + " is being removed"}
	}
	return app, svc, nil
}

// rollbackService is `berth rollback SERVICE`: the spec the current
// version replaced goes back, as a new version with its own deployment.
func (s *Server) rollbackService(w http.ResponseWriter, r *http.Request) error {
	app, svc, err := s.liveService(r)
	if err != nil {
		return err
	}
	svcName := svc.Name
	d := s.store.View().CurrentDeployment(app.Name, svcName, svc.Version)
	if d == nil || d.Previous == nil {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("service %s has no previous version to roll back to; change it and run berth up instead", svcName)}
	}
	res, err := s.Commit(r.Context(), &state.RollbackService{ID: d.ID, ReasonCode: types.ReasonRollback,
		Reason: "rolled back to version " + strconv.FormatUint(d.FromVersion, 10) + " by berth rollback", Now: s.clock.Now()})
	if err != nil {
		return err
	}
	back, ok := res.(*types.Deployment)
	if !ok {
		return fmt.Errorf("roll back service %s: the manager returned %T", svcName, res)
	}
	writeJSON(w, http.StatusOK, wireDeployment(back))
	return nil
}
