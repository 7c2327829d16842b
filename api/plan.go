package api

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/internal/types"
)

// PathAppPlan answers what submitting an app would do, changing nothing:
// POST the app, answered with a Plan (`berth up --dry-run`).
const PathAppPlan = "/v1/apps/{name}/plan"

// Plan is what a submission would do to each service.
type Plan struct {
	App      string        `json:"app"`
	Services []ServicePlan `json:"services"`
}

// Service plan actions.
const (
	PlanCreate    = "create"
	PlanUpdate    = "update"    // the spec changed: its replicas roll
	PlanScale     = "scale"     // only the replica count moved
	PlanUnchanged = "unchanged" // nothing moves
	PlanRemove    = "remove"
)

// ServicePlan is what a submission would do to one service.
type ServicePlan struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	// Fields are the spec fields that differ (update), by their JSON name.
	Fields []string `json:"fields,omitempty"`
	// FromVersion and ToVersion are the spec versions before and after.
	FromVersion uint64 `json:"from_version,omitempty"`
	ToVersion   uint64 `json:"to_version,omitempty"`
	// Start and Stop count the tasks the submission starts and stops
	// (replicated services; a global one runs one per eligible node).
	Start int `json:"start"`
	Stop  int `json:"stop"`
}

// PlanApp returns what submitting app would do.
func (c *Client) PlanApp(ctx context.Context, app *types.App) (*Plan, error) {
	var p Plan
	_, err := c.do(ctx, http.MethodPost, fill(PathAppPlan, app.Name), nil, app, &p)
	return &p, err
}
