package server

import (
	"net/http"

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
	return &api.Deployment{
		ID: d.ID, App: d.App, Service: d.Service, FromVersion: d.FromVersion, ToVersion: d.ToVersion,
		Rollback: d.Rollback, State: string(d.State),
		Updated: d.Updated, Healthy: d.Healthy, Total: d.Total, Failed: d.Failed,
		Parallelism: par, Order: cfg.Order, Delay: cfg.Delay, Monitor: cfg.Monitor,
		MaxFailureRatio: cfg.MaxFailureRatio, FailureAction: cfg.FailureAction,
		ReasonCode: d.ReasonCode, Reason: d.Reason, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}
