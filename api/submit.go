package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// SubmitOptions shape a submission as docker compose up's flags do. They
// travel as the query of PUT /v1/apps/{name} (and of the plan call, so a
// dry run plans what up would do); the zero value submits every service of
// the app and keeps the services the cluster runs that the app lacks.
type SubmitOptions struct {
	// Services, when set, are the only services applied (`up SERVICE...`,
	// with their dependencies as the CLI adds them): every other service
	// keeps the spec the cluster has, and one the cluster lacks is left out.
	Services []string
	// RemoveOrphans removes the services the cluster runs for the app that
	// it no longer has (`--remove-orphans`), except those in Keep.
	RemoveOrphans bool
	// Keep names stored services the app lacks that stay even with
	// RemoveOrphans: those of Compose profiles not enabled this time.
	Keep []string
	// ForceRecreate gives each applied service that exists a new version
	// (a deployment) even when its spec did not change.
	ForceRecreate bool
	// NoRecreate keeps the stored spec of each service that exists (only
	// its replica count follows the file).
	NoRecreate bool
	// StopGrace, when set, is how long each task this submission replaces
	// has to stop before it is killed (`up -t`), instead of its service's
	// stop_grace_period.
	StopGrace time.Duration
}

// Query parameters of SubmitOptions.
const (
	QueryServices      = "services"
	QueryRemoveOrphans = "remove_orphans"
	QueryKeep          = "keep"
	QueryForceRecreate = "force_recreate"
	QueryNoRecreate    = "no_recreate"
	QueryStopGrace     = "stop_grace"
)

// Query encodes o; the zero value encodes to nothing.
func (o SubmitOptions) Query() url.Values {
	q := url.Values{}
	if len(o.Services) > 0 {
		q.Set(QueryServices, strings.Join(o.Services, ","))
	}
	if len(o.Keep) > 0 {
		q.Set(QueryKeep, strings.Join(o.Keep, ","))
	}
	for key, on := range map[string]bool{QueryRemoveOrphans: o.RemoveOrphans, QueryForceRecreate: o.ForceRecreate, QueryNoRecreate: o.NoRecreate} {
		if on {
			q.Set(key, "true")
		}
	}
	if o.StopGrace > 0 {
		q.Set(QueryStopGrace, o.StopGrace.String())
	}
	return q
}

// SubmitAppWith creates or updates an app as o says.
func (c *Client) SubmitAppWith(ctx context.Context, app *types.App, o SubmitOptions) (*SubmitResponse, error) {
	var r SubmitResponse
	_, err := c.do(ctx, http.MethodPut, fill(PathApp, app.Name), o.Query(), app, &r)
	return &r, err
}

// PlanAppWith returns what SubmitAppWith(app, o) would do.
func (c *Client) PlanAppWith(ctx context.Context, app *types.App, o SubmitOptions) (*Plan, error) {
	var p Plan
	_, err := c.do(ctx, http.MethodPost, fill(PathAppPlan, app.Name), o.Query(), app, &p)
	return &p, err
}

// DeleteOptions are down's flags as the manager takes them, sent as the
// query of DELETE /v1/apps/{name}.
type DeleteOptions struct {
	// Volumes removes the app's named volumes too (down -v).
	Volumes bool
	// StopGrace, when set, is how long each task has to stop before it is
	// killed (down -t), instead of its service's stop_grace_period.
	StopGrace time.Duration
}

// DeleteAppWith asks for an app's removal as o says; see DeleteApp.
func (c *Client) DeleteAppWith(ctx context.Context, name string, o DeleteOptions) error {
	q := url.Values{}
	if o.Volumes {
		q.Set("volumes", "true")
	}
	if o.StopGrace > 0 {
		q.Set(QueryStopGrace, o.StopGrace.String())
	}
	_, err := c.do(ctx, http.MethodDelete, fill(PathApp, name), q, nil, nil)
	return err
}
