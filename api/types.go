package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// Routes, in one place so server and client cannot drift apart.
const (
	PathStatus       = "/v1/status"
	PathApps         = "/v1/apps"                                 // GET list
	PathApp          = "/v1/apps/{name}"                          // PUT submit, GET, DELETE (?volumes=true)
	PathScale        = "/v1/apps/{name}/services/{service}/scale" // POST ScaleRequest
	PathTasks        = "/v1/tasks"                                // GET ?app=&service=&node= (blocking)
	PathTask         = "/v1/tasks/{id}"                           // GET
	PathTaskLogs     = "/v1/tasks/{id}/logs"                      // GET ?follow=&tail=&timestamps= (stream, proxied to the agent)
	PathNodes        = "/v1/nodes"                                // GET list
	PathNode         = "/v1/nodes/{id}"                           // GET
	PathNodeRegister = "/v1/nodes/register"                       // POST RegisterRequest (agents)
	PathHeartbeat    = "/v1/nodes/{id}/heartbeat"                 // POST (agents)
	PathNodeTasks    = "/v1/nodes/{id}/tasks"                     // GET NodeTasks (agents, blocking)
	PathNodeStatus   = "/v1/nodes/{id}/status"                    // POST StatusReport (agents)
	PathTeardown     = "/v1/nodes/{id}/teardown"                  // POST TeardownDone (agents)
	PathMetrics      = "/metrics"

	// Agent's own API, for the manager to proxy logs.
	PathAgentTaskLogs = "/v1/agent/tasks/{id}/logs"

	// HeaderIndex carries the store index an answer reflects.
	HeaderIndex = "X-Berth-Index"
)

// Request size limits, enforced by the server.
const (
	MaxAppBytes     = 16 << 20 // one app with its secrets and configs
	MaxRequestBytes = 1 << 20  // every other request
)

// Status describes the manager that answered.
type Status struct {
	Version  string `json:"version"`
	NodeName string `json:"node_name"`
	Leader   bool   `json:"leader"`
	LeaderID string `json:"leader_id,omitempty"`
	Index    uint64 `json:"index"`
	DataDir  string `json:"data_dir,omitempty"`
	// Dev is true for `berth server --dev` (manager and agent in one process).
	Dev bool `json:"dev"`
	PID int  `json:"pid"`
	// Unhealthy, when set, says why this manager cannot write its data
	// directory: it refuses other reads (503) and hands leadership away
	// until it can again.
	Unhealthy string `json:"unhealthy,omitempty"`
}

// SubmitResponse answers PUT /v1/apps/{name}.
type SubmitResponse struct {
	App *types.App `json:"app"`
	// Changed lists the services whose spec changed (their tasks are
	// replaced); Unchanged those left as they run; Removed those no longer in
	// the app.
	Changed   []string `json:"changed,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	Index     uint64   `json:"index"`
}

// ScaleRequest is the body of a scale call.
type ScaleRequest struct {
	Replicas int `json:"replicas"`
}

// RegisterRequest is an agent announcing itself. ID is empty on first start;
// a restarted agent sends the ID it was given, and keeps it.
type RegisterRequest struct {
	Node types.Node `json:"node"`
}

// RegisterResponse gives the agent its node ID and heartbeat period, and
// the managers' cluster addresses to fail over to.
type RegisterResponse struct {
	NodeID       string        `json:"node_id"`
	HeartbeatTTL time.Duration `json:"heartbeat_ttl"`
	Managers     []string      `json:"managers,omitempty"`
}

// HeartbeatResponse lists the managers' cluster addresses as they are now.
type HeartbeatResponse struct {
	Managers []string `json:"managers,omitempty"`
	// HeartbeatTTL is the TTL in force, which grows with the cluster; the
	// agent beats three times within it (0 from a manager that predates
	// it: keep the one registration gave).
	HeartbeatTTL time.Duration `json:"heartbeat_ttl,omitempty"`
}

// NodeTasks is what an agent must run: its tasks, the current spec of each
// service they belong to, and the resources of their apps. A task whose
// ServiceVersion differs from its service's Version is an old one that will
// be shut down; its spec is not sent.
type NodeTasks struct {
	// Tasks are the node's tasks, in the store's order; in an answer to an
	// agent that said which answer it holds (Client.NodeTasksSince), only
	// those changed since: Order then lists them all.
	Tasks []*types.Task `json:"tasks"`
	// Known echoes the index the agent said it holds the answer of, when
	// the manager answered with the changes since (0: Tasks is whole).
	Known uint64 `json:"known,omitempty"`
	// Order lists every task of the node, in order, by ID and
	// ModifyIndex, when Known is set: a task not in Tasks has not changed
	// since Known, and the agent takes it from the answer it holds (Merge).
	// A node of 400 tasks given ten more used to fetch and decode all 410.
	Order    []TaskRef                 `json:"order,omitempty"`
	Services map[string]*types.Service `json:"services"` // by types.ServiceID(app, name)
	Apps     map[string]*AppResources  `json:"apps"`     // by app name
	// RemoveVolumes are named volumes this node must remove its copy of
	// (`berth volume rm`), then report (ReportVolumeRemoved).
	RemoveVolumes []VolumeRef `json:"remove_volumes,omitempty"`
}

// TaskRef names one version of a task: its ID and ModifyIndex.
type TaskRef struct {
	ID          string `json:"id"`
	ModifyIndex uint64 `json:"modify_index"`
}

// ErrStaleDelta says an answer of changes (NodeTasks.Known) does not fit
// the answer it was merged onto: the agent asks for its whole list again.
var ErrStaleDelta = errors.New("the manager's changes do not fit the tasks this node holds")

// Merge makes an answer of changes whole, taking the tasks it left out
// from prev, the whole answer the agent holds. An answer that is whole
// already is left as it is. A task left out that prev does not hold at
// the same ModifyIndex is ErrStaleDelta: prev is not the answer the
// manager counted on (another manager's, or one from before a restore).
func (nt *NodeTasks) Merge(prev *NodeTasks) error {
	if nt.Known == 0 {
		return nil
	}
	changed := make(map[string]*types.Task, len(nt.Tasks))
	for _, t := range nt.Tasks {
		changed[t.ID] = t
	}
	held := map[string]*types.Task{}
	if prev != nil {
		held = make(map[string]*types.Task, len(prev.Tasks))
		for _, t := range prev.Tasks {
			held[t.ID] = t
		}
	}
	whole := make([]*types.Task, 0, len(nt.Order))
	used := 0
	for _, ref := range nt.Order {
		t := changed[ref.ID]
		if t != nil {
			used++
		} else {
			t = held[ref.ID]
		}
		if t == nil || t.ModifyIndex != ref.ModifyIndex {
			return fmt.Errorf("task %s (version %d): %w", ref.ID, ref.ModifyIndex, ErrStaleDelta)
		}
		whole = append(whole, t)
	}
	if used != len(changed) {
		return fmt.Errorf("%d changed tasks, %d of them in the order: %w", len(changed), used, ErrStaleDelta)
	}
	nt.Tasks, nt.Known, nt.Order = whole, 0, nil
	return nil
}

// VolumeRef names a Docker volume and the app berth made it for.
type VolumeRef struct {
	App  string `json:"app"`
	Name string `json:"name"`
}

// AppResources are the parts of an app an agent needs besides service specs.
// Deleting is set once `down` was asked: when the agent has no container of
// the app left it removes the app's networks (and, with RemoveVolumes, its
// named volumes) and posts TeardownDone.
type AppResources struct {
	Networks      map[string]*types.Network `json:"networks,omitempty"`
	Volumes       map[string]*types.Volume  `json:"volumes,omitempty"`
	Secrets       map[string]*types.Secret  `json:"secrets,omitempty"`
	Configs       map[string]*types.Secret  `json:"configs,omitempty"`
	Deleting      bool                      `json:"deleting,omitempty"`
	RemoveVolumes bool                      `json:"remove_volumes,omitempty"`
	// Slices are this node's slices of the app's cluster networks, by
	// Compose network name ("10.240.1.0/24"): the Docker network of each
	// takes the slice as its subnet. A network without a slice here is a
	// local one (the cluster has no overlay: see agent --overlay).
	Slices map[string]string `json:"slices,omitempty"`
}

// StatusReport is a batch of task states from one agent.
type StatusReport struct {
	Tasks []types.TaskStatus `json:"tasks"`
}

// TeardownDone tells the manager an agent removed an app's networks (and
// volumes, if asked).
type TeardownDone struct {
	App string `json:"app"`
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// LogOptions select what TaskLogs streams.
type LogOptions struct {
	Follow     bool
	Tail       int // 0: all
	Timestamps bool
	// Since and Until keep the lines written in [Since, Until] (zero: no
	// bound); the docker driver filters them, as docker logs does.
	Since, Until time.Time
}
