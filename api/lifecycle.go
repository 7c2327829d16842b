package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// The per-service verbs of Compose (berth stop, start, restart, rm, kill,
// pause, unpause, top). stop, start, restart and rm change desired state
// (the app's record in Raft); kill, pause, unpause and top act once on a
// running task, through the agent of its node.
const (
	PathAppStop    = "/v1/apps/{name}/stop"    // POST LifecycleRequest -> LifecycleResponse
	PathAppStart   = "/v1/apps/{name}/start"   // POST LifecycleRequest -> LifecycleResponse
	PathAppRestart = "/v1/apps/{name}/restart" // POST LifecycleRequest -> LifecycleResponse
	PathAppRm      = "/v1/apps/{name}/rm"      // POST LifecycleRequest -> RemoveResponse

	PathTaskKill    = "/v1/tasks/{id}/kill"    // POST KillRequest
	PathTaskPause   = "/v1/tasks/{id}/pause"   // POST
	PathTaskUnpause = "/v1/tasks/{id}/unpause" // POST
	PathTaskTop     = "/v1/tasks/{id}/top"     // GET -> Processes

	// The agent's side of the task actions, proxied by the manager.
	PathAgentTaskKill    = "/v1/agent/tasks/{id}/kill" // POST ?signal=
	PathAgentTaskPause   = "/v1/agent/tasks/{id}/pause"
	PathAgentTaskUnpause = "/v1/agent/tasks/{id}/unpause"
	PathAgentTaskTop     = "/v1/agent/tasks/{id}/top"
)

// MaxTimeoutSeconds bounds a stop grace given with -t: an hour.
const MaxTimeoutSeconds = 3600

// LifecycleRequest names the services of an app a verb acts on (none: every
// service). TimeoutSeconds is -t: the stop grace, for stop and restart
// (nil: each service's stop_grace_period).
type LifecycleRequest struct {
	Services       []string `json:"services,omitempty"`
	TimeoutSeconds *int     `json:"timeout_seconds,omitempty"`
}

// LifecycleResponse lists the services the verb acted on.
type LifecycleResponse struct {
	Services []string `json:"services"`
}

// RemoveResponse lists the tasks berth rm removed, by name.
type RemoveResponse struct {
	Removed []string `json:"removed"`
}

// KillRequest is berth kill's signal: a name (SIGTERM, TERM) or a number;
// empty is SIGKILL, as docker kill.
type KillRequest struct {
	Signal string `json:"signal,omitempty"`
}

// Processes is one task's process table, as docker top prints it.
type Processes struct {
	Titles    []string   `json:"titles"`
	Processes [][]string `json:"processes"`
}

// StopServices stops services of an app (none named: all of them).
func (c *Client) StopServices(ctx context.Context, app string, req LifecycleRequest) (*LifecycleResponse, error) {
	return c.lifecycle(ctx, PathAppStop, app, req)
}

// StartServices starts stopped services of an app.
func (c *Client) StartServices(ctx context.Context, app string, req LifecycleRequest) (*LifecycleResponse, error) {
	return c.lifecycle(ctx, PathAppStart, app, req)
}

// RestartServices replaces the tasks of services of an app now.
func (c *Client) RestartServices(ctx context.Context, app string, req LifecycleRequest) (*LifecycleResponse, error) {
	return c.lifecycle(ctx, PathAppRestart, app, req)
}

func (c *Client) lifecycle(ctx context.Context, route, app string, req LifecycleRequest) (*LifecycleResponse, error) {
	var out LifecycleResponse
	_, err := c.do(ctx, http.MethodPost, fill(route, app), nil, req, &out)
	return &out, err
}

// RemoveStopped removes the stopped tasks of services of an app.
func (c *Client) RemoveStopped(ctx context.Context, app string, req LifecycleRequest) (*RemoveResponse, error) {
	var out RemoveResponse
	_, err := c.do(ctx, http.MethodPost, fill(PathAppRm, app), nil, req, &out)
	return &out, err
}

// KillTask signals a running task once.
func (c *Client) KillTask(ctx context.Context, taskID, signal string) error {
	_, err := c.do(ctx, http.MethodPost, fill(PathTaskKill, taskID), nil, KillRequest{Signal: signal}, nil)
	return err
}

// PauseTask freezes a running task; UnpauseTask thaws it.
func (c *Client) PauseTask(ctx context.Context, taskID string) error {
	_, err := c.do(ctx, http.MethodPost, fill(PathTaskPause, taskID), nil, struct{}{}, nil)
	return err
}

// UnpauseTask thaws a task PauseTask froze.
func (c *Client) UnpauseTask(ctx context.Context, taskID string) error {
	_, err := c.do(ctx, http.MethodPost, fill(PathTaskUnpause, taskID), nil, struct{}{}, nil)
	return err
}

// TaskTop lists a running task's processes.
func (c *Client) TaskTop(ctx context.Context, taskID string) (*Processes, error) {
	var out Processes
	_, err := c.do(ctx, http.MethodGet, fill(PathTaskTop, taskID), nil, nil, &out)
	return &out, err
}

// AgentTaskPath is an agent route with the task ID filled in, and q as
// its query.
func AgentTaskPath(route, taskID string, q url.Values) string {
	p := fill(route, taskID)
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

// oneShot reports whether a POST to path acts once and must not be sent
// again after an answer was lost: a second kill would signal a task the
// restart policy started since, a second restart replace it again, a
// second run start a second one-off.
func oneShot(path string) bool {
	return strings.HasPrefix(path, "/v1/") && (strings.HasSuffix(path, "/kill") || strings.HasSuffix(path, "/restart") || strings.HasSuffix(path, "/runs"))
}
