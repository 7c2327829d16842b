package api

import (
	"context"
	"net/http"
	"time"
)

// PathDeployments lists deployments: GET ?app=&service= (blocking).
const PathDeployments = "/v1/deployments"

// Deployment states, as Deployment.State carries them.
const (
	DeploymentRunning    = "running"
	DeploymentPaused     = "paused"
	DeploymentFailed     = "failed"
	DeploymentSucceeded  = "succeeded"
	DeploymentRolledBack = "rolled_back"
	DeploymentSuperseded = "superseded"
)

// Deployment is the rollout of one version of a service, as clients see
// it. A script can rely on State and ReasonCode ("failure_ratio",
// "replica_failed", "superseded", "rollback", "awaiting_promotion",
// "progress_deadline"); Reason says why in a sentence.
type Deployment struct {
	ID          string `json:"id"` // "<app>/<service>/<to_version>"
	App         string `json:"app"`
	Service     string `json:"service"`
	FromVersion uint64 `json:"from_version"` // 0: the service is new
	ToVersion   uint64 `json:"to_version"`
	Rollback    bool   `json:"rollback,omitempty"`
	// Canaries is x-berth-update's count (0: none); Promoted once they are.
	Canaries int    `json:"canaries,omitempty"`
	Promoted bool   `json:"promoted,omitempty"`
	State    string `json:"state"`
	// Progress: replicas at the new version, those of them up, wanted, failed.
	Updated int `json:"updated"`
	Healthy int `json:"healthy"`
	Total   int `json:"total"`
	Failed  int `json:"failed"`
	// The update (or rollback) config in force.
	Parallelism     int           `json:"parallelism"` // 0: all at once
	Order           string        `json:"order"`
	Delay           time.Duration `json:"delay"`
	Monitor         time.Duration `json:"monitor"`
	MaxFailureRatio float64       `json:"max_failure_ratio"`
	FailureAction   string        `json:"failure_action"`
	ReasonCode      string        `json:"reason_code,omitempty"`
	Reason          string        `json:"reason,omitempty"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
}

// Final reports whether the deployment has ended.
func (d *Deployment) Final() bool {
	return d.State != DeploymentRunning && d.State != DeploymentPaused
}

// DeploymentQuery selects deployments; empty fields match all. Service
// needs App.
type DeploymentQuery struct {
	App     string
	Service string
	QueryOptions
}

// ListDeployments returns deployments by app, service and version.
func (c *Client) ListDeployments(ctx context.Context, q DeploymentQuery) ([]*Deployment, QueryMeta, error) {
	v := q.values()
	if q.App != "" {
		v.Set("app", q.App)
	}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	var ds []*Deployment
	meta, err := c.do(ctx, http.MethodGet, PathDeployments, v, nil, &ds)
	return ds, meta, err
}

// PathServiceRollback rolls a service back to its previous version: POST,
// answered with the rollback's Deployment.
const PathServiceRollback = "/v1/apps/{name}/services/{service}/rollback"

// RollbackService puts back the spec the service's current version
// replaced, rolled out by its rollback_config.
func (c *Client) RollbackService(ctx context.Context, app, service string) (*Deployment, error) {
	var d Deployment
	_, err := c.do(ctx, http.MethodPost, fill(PathServiceRollback, app, service), nil, struct{}{}, &d)
	return &d, err
}

// PathServicePromote promotes the canaries of a service's deployment:
// POST, answered with the Deployment.
const PathServicePromote = "/v1/apps/{name}/services/{service}/promote"

// PromoteService promotes the canaries of the service's current
// deployment: the rest of its replicas roll.
func (c *Client) PromoteService(ctx context.Context, app, service string) (*Deployment, error) {
	var d Deployment
	_, err := c.do(ctx, http.MethodPost, fill(PathServicePromote, app, service), nil, struct{}{}, &d)
	return &d, err
}
