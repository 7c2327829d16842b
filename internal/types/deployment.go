package types

import (
	"errors"
	"fmt"
	"time"
)

// Update orders (deploy.update_config.order).
const (
	OrderStopFirst  = "stop-first"
	OrderStartFirst = "start-first"
)

// Failure actions (deploy.update_config.failure_action).
const (
	FailurePause    = "pause"
	FailureContinue = "continue"
	FailureRollback = "rollback"
)

// UpdateConfig is deploy.update_config (or rollback_config): how a changed
// service's replicas are replaced. The zero value means Swarm's defaults;
// read it through Effective.
type UpdateConfig struct {
	// Parallelism is how many replicas are replaced at a time; 0 all at once.
	Parallelism *int `json:"parallelism,omitempty"`
	// Delay is the wait between two steps, once a step's replicas are up.
	Delay time.Duration `json:"delay,omitempty"`
	// Order is OrderStopFirst ("": the default) or OrderStartFirst.
	Order string `json:"order,omitempty"`
	// Monitor is how long after its start a new replica's failure counts
	// against the deployment (0: DefaultMonitor).
	Monitor time.Duration `json:"monitor,omitempty"`
	// MaxFailureRatio is the share of the new version's replicas that may
	// fail before FailureAction is taken (0: none may).
	MaxFailureRatio float64 `json:"max_failure_ratio,omitempty"`
	// FailureAction is FailurePause ("": the default), FailureContinue or
	// FailureRollback.
	FailureAction string `json:"failure_action,omitempty"`
}

// Canary is x-berth-update: a new version first replaces Count replicas,
// and the rest only once they are promoted: by themselves once they stayed
// up for the monitor (AutoPromote), else by `berth deploy promote`. A
// deployment not done within ProgressDeadline (0: none) fails as a
// failure of its replicas would.
type Canary struct {
	Count            int           `json:"count,omitempty"`
	AutoPromote      bool          `json:"auto_promote,omitempty"`
	ProgressDeadline time.Duration `json:"progress_deadline,omitempty"`
}

// MaxProgressDeadline bounds x-berth-update.progress_deadline.
const MaxProgressDeadline = 24 * time.Hour

// Check reports the first field out of bounds, and why (field "": none).
func (c *Canary) Check() (field string, err error) {
	switch {
	case c == nil:
	case c.Count < 0 || c.Count > MaxUpdateParallelism:
		return "canary", fmt.Errorf("%d is not between 0 and %d", c.Count, MaxUpdateParallelism)
	case c.ProgressDeadline < 0 || c.ProgressDeadline > MaxProgressDeadline:
		return "progress_deadline", fmt.Errorf("%s is not between 0s and %s", c.ProgressDeadline, MaxProgressDeadline)
	}
	return "", nil
}

// DefaultMonitor is Swarm's update monitor.
const DefaultMonitor = 5 * time.Second

// Effective is the config with Swarm's defaults filled in: parallelism 1,
// delay 0, stop-first, monitor 5s, max_failure_ratio 0, pause.
func (c *UpdateConfig) Effective() UpdateConfig {
	var out UpdateConfig
	if c != nil {
		out = *c
	}
	if out.Parallelism == nil {
		one := 1
		out.Parallelism = &one
	}
	if out.Order == "" {
		out.Order = OrderStopFirst
	}
	if out.Monitor <= 0 {
		out.Monitor = DefaultMonitor
	}
	if out.FailureAction == "" {
		out.FailureAction = FailurePause
	}
	return out
}

// Step is how many replicas of total one step replaces.
func (c UpdateConfig) Step(total int) int {
	if c.Parallelism == nil || *c.Parallelism <= 0 || *c.Parallelism > total {
		return max(total, 1)
	}
	return *c.Parallelism
}

// DeploymentState is where a deployment stands.
type DeploymentState string

// Deployment states. Running and paused are live; the others are final.
const (
	DeploymentRunning    DeploymentState = "running"
	DeploymentPaused     DeploymentState = "paused"
	DeploymentFailed     DeploymentState = "failed"
	DeploymentSucceeded  DeploymentState = "succeeded"
	DeploymentRolledBack DeploymentState = "rolled_back"
	// DeploymentSuperseded: a newer version of the service was submitted
	// before this one finished.
	DeploymentSuperseded DeploymentState = "superseded"
)

// Live reports whether a controller still drives the deployment.
func (s DeploymentState) Live() bool {
	return s == DeploymentRunning || s == DeploymentPaused
}

// Reason codes of a deployment: stable words a script can match on; Reason
// says the same in a sentence.
const (
	ReasonFailureRatio = "failure_ratio"      // more replicas failed than max_failure_ratio allows
	ReasonReplicas     = "replica_failed"     // the rollout finished with failed replicas (continue)
	ReasonSuperseded   = "superseded"         // a newer version was submitted
	ReasonRollback     = "rollback"           // asked for by `berth rollback`
	ReasonPromotion    = "awaiting_promotion" // canaries up, waiting for `berth deploy promote`
	ReasonDeadline     = "progress_deadline"  // not done within x-berth-update.progress_deadline
)

// Deployment is the rollout of one version of a service: kept in Raft so
// that every client and the next leader see the same rollout. See
// internal/controller/rollout.go for how it is driven.
type Deployment struct {
	ID      string `json:"id"` // DeploymentID(app, service, ToVersion)
	App     string `json:"app"`
	Service string `json:"service"`
	// FromVersion is the service's version before (0: the service is new);
	// ToVersion the one rolled out.
	FromVersion uint64 `json:"from_version"`
	ToVersion   uint64 `json:"to_version"`
	// Rollback is set on a deployment that puts the previous spec back.
	Rollback bool `json:"rollback,omitempty"`
	// Config is the update_config (rollback_config for a rollback) in
	// force, defaults filled in.
	Config UpdateConfig `json:"config"`
	// Previous is the spec at FromVersion, for a rollback (nil: new).
	Previous *Service `json:"previous,omitempty"`
	// Canary is x-berth-update in force (nil: none); Promoted is set once
	// the canaries are, and the rest may roll.
	Canary   *Canary `json:"canary,omitempty"`
	Promoted bool    `json:"promoted,omitempty"`

	State DeploymentState `json:"state"`
	// Progress: replicas at the new version, those of them up, wanted.
	Updated int `json:"updated"`
	Healthy int `json:"healthy"`
	Total   int `json:"total"`
	Failed  int `json:"failed,omitempty"`
	// NextStepAt: the next step does not start before (update_config.delay).
	NextStepAt time.Time `json:"next_step_at,omitzero"`
	// ResumedAt: failures of tasks created before it no longer count (a
	// paused deployment resumed by `berth up`).
	ResumedAt  time.Time `json:"resumed_at,omitzero"`
	ReasonCode string    `json:"reason_code,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	// StopGrace, when set, is the stop grace of the tasks this deployment
	// replaces (up -t), instead of their service's stop_grace_period.
	StopGrace time.Duration `json:"stop_grace,omitempty"`

	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// DeploymentID names the deployment of version v of a service.
func DeploymentID(app, service string, v uint64) string {
	return fmt.Sprintf("%s/%s/%d", app, service, v)
}

// Bounds of an UpdateConfig, checked by the Compose loader and the API.
const (
	MaxUpdateParallelism = 10000
	MaxUpdateWait        = time.Hour // delay and monitor
)

// Check reports the first field of the config that is out of bounds, and
// why (field "": none). A rollback config cannot roll back in turn.
func (c *UpdateConfig) Check(rollback bool) (field string, err error) {
	switch {
	case c == nil:
	case rollback && c.FailureAction == FailureRollback:
		return "failure_action", errors.New(`"rollback" cannot be the failure action of a rollback; use pause or continue`)
	case c.Parallelism != nil && (*c.Parallelism < 0 || *c.Parallelism > MaxUpdateParallelism):
		return "parallelism", fmt.Errorf("%d is not between 0 (all at once) and %d", *c.Parallelism, MaxUpdateParallelism)
	case c.Delay < 0 || c.Delay > MaxUpdateWait:
		return "delay", fmt.Errorf("%s is not between 0s and %s", c.Delay, MaxUpdateWait)
	case c.Monitor < 0 || c.Monitor > MaxUpdateWait:
		return "monitor", fmt.Errorf("%s is not between 0s and %s", c.Monitor, MaxUpdateWait)
	case !(c.MaxFailureRatio >= 0 && c.MaxFailureRatio <= 1): // NaN too
		return "max_failure_ratio", fmt.Errorf("%g is not between 0 and 1", c.MaxFailureRatio)
	case c.Order != "" && c.Order != OrderStopFirst && c.Order != OrderStartFirst:
		return "order", fmt.Errorf("%q is not one of stop-first, start-first", c.Order)
	case c.FailureAction != "" && c.FailureAction != FailurePause && c.FailureAction != FailureContinue && c.FailureAction != FailureRollback:
		return "failure_action", fmt.Errorf("%q is not one of pause, continue, rollback", c.FailureAction)
	}
	return "", nil
}
