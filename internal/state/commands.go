package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// ErrNotFound is wrapped by the errors of commands whose target is missing.
var ErrNotFound = errors.New("not found")

// Command is one state change carried in a Raft log entry. The command types
// below are its only implementations; pass them to Encode, by value or by
// pointer.
type Command interface {
	kind() commandKind
	// apply makes the change in w. It must be deterministic: it reads only
	// the command, the store and w.index, never the clock or randomness.
	apply(w *writeTxn) (any, error)
}

// commandKind names a command in its encoding. Values are stored in Raft
// logs and snapshots of running clusters: never renumber them. They stay
// small: below '{' (0x7b), which codec.go relies on.
type commandKind byte

const (
	kindUpsertApp           commandKind = 1
	kindDeleteApp           commandKind = 2
	kindPurgeApp            commandKind = 3
	kindTeardownDone        commandKind = 4
	kindScaleService        commandKind = 5
	kindTaskUpdates         commandKind = 6
	kindTaskStatusUpdate    commandKind = 7
	kindUpsertNode          commandKind = 8
	kindSetNodeStatus       commandKind = 9
	kindSetNodeAvailability commandKind = 10
	kindUpdateNodeLabels    commandKind = 11
	kindDeleteNode          commandKind = 12
	kindInitCluster         commandKind = 13
	kindSetTokens           commandKind = 14
	kindUpsertManager       commandKind = 15
	kindRemoveManager       commandKind = 16
	kindRevokeNode          commandKind = 17 // revocation (apply_revoke.go)
	kindSetAdminToken       commandKind = 18
	kindSetServiceStatus    commandKind = 19 // the controller's verdict on a service version
	kindUnpinVolumes        commandKind = 30 // volume pins (apply_volume.go)
	kindUpsertMachine       commandKind = 31 // machine records (apply_machine.go)
	kindDeleteMachine       commandKind = 32
	kindUpsertImage         commandKind = 33 // image records (apply_image.go)
	kindDeleteImage         commandKind = 34
	kindImageReplica        commandKind = 35
	kindSetDeployment       commandKind = 36 // deployments (apply_deployment.go)
	kindRollbackService     commandKind = 37
	kindPromoteDeployment   commandKind = 38
	kindStopServices        commandKind = 40 // per-service lifecycle (apply_lifecycle.go)
	kindStartServices       commandKind = 41
	kindRestartServices     commandKind = 42
	kindRemoveStoppedTasks  commandKind = 43
	kindRemoveRuns          commandKind = 44 // one-offs of berth run (apply_run.go)
	kindCreateNetwork       commandKind = 45 // cluster networks (apply_network.go)
	kindDeleteNetwork       commandKind = 46
	kindRemoveVolume        commandKind = 47 // volume removal (apply_volume_rm.go)
	kindVolumeRemoved       commandKind = 48
	kindTaskStatusBatch     commandKind = 49 // many nodes' reports in one entry (apply_task.go)
)

// UpsertApp submits an app (`berth up`). Result: *UpsertResult.
//
// Deploy makes a deployment of each changed service in the same apply
// (apply_deployment.go); entries written before deployments existed have
// none, so replaying an old log gives the state it gave then.
type UpsertApp struct {
	App    *types.App `json:"app"`
	Now    time.Time  `json:"now"`
	Deploy bool       `json:"deploy,omitempty"`
	// Recreate names services given a new version even if their spec did
	// not change (up --force-recreate).
	Recreate []string `json:"recreate,omitempty"`
	// Base, when set, is the Version of the stored app the submission was
	// merged with (up SERVICE..., orphans kept): a later change to the app
	// (a submission, a scale, a rollback; not the controller's verdicts)
	// refuses the upsert with ErrStale rather than undo that change.
	Base uint64 `json:"base,omitempty"`
	// Untouched names services the submission leaves as the store has them
	// (not named by up SERVICE..., orphans kept): they keep their
	// lifecycle (a berth stop), which a submission otherwise drops.
	Untouched []string `json:"untouched,omitempty"`
	// StopGrace, when set, is the stop grace of the tasks the new versions
	// replace (up -t), kept on their deployments.
	StopGrace time.Duration `json:"stop_grace,omitempty"`
}

// ErrStale is returned by an UpsertApp whose Base is no longer the app's.
var ErrStale = errors.New("the app changed since the submission was read")

// UpsertResult tells what an UpsertApp changed. Changed lists services whose
// spec version was bumped (or that are new), Unchanged those left as they
// were, Removed those no longer in the app.
type UpsertResult struct {
	App                         *types.App
	Changed, Unchanged, Removed []string
}

// DeleteApp starts removing an app (`berth down`): it marks the app
// Deleting. Result: the updated *types.App.
type DeleteApp struct {
	Name    string    `json:"name"`
	Volumes bool      `json:"volumes"`
	Now     time.Time `json:"now"`
	// StopGrace, when set, is down -t: the stop grace of every task.
	StopGrace time.Duration `json:"stop_grace,omitempty"`
}

// PurgeApp removes an app and all its tasks, once its teardown is done.
// Result: nil.
type PurgeApp struct {
	Name string `json:"name"`
}

// TeardownDone records that a node removed an app's networks (and volumes).
// Result: the updated *types.App.
type TeardownDone struct {
	App    string    `json:"app"`
	NodeID string    `json:"node_id"`
	Now    time.Time `json:"now"`
}

// ScaleService sets the replicas of a replicated service (`berth scale`).
// Result: the updated *types.App.
type ScaleService struct {
	App      string    `json:"app"`
	Service  string    `json:"service"`
	Replicas int       `json:"replicas"`
	Now      time.Time `json:"now"`
}

// SetServiceStatus records the controller's verdicts on services of one app
// (types.Service.Status), judged on the app at AppVersion: a verdict judged
// before a submission or a scale is stale and dropped. Result: nil.
type SetServiceStatus struct {
	App        string                          `json:"app"`
	AppVersion uint64                          `json:"app_version"`
	Statuses   map[string]*types.ServiceStatus `json:"statuses"` // by service name
}

// Assignment places a pending task on a node.
type Assignment struct {
	TaskID string `json:"task_id"`
	NodeID string `json:"node_id"`
}

// TaskUpdates is one plan or controller batch, committed as one Raft entry.
// The parts apply in field order: Create, Assign, Pending, Desired, Delete.
// Result: nil.
type TaskUpdates struct {
	Create  []*types.Task              `json:"create,omitempty"`
	Assign  []Assignment               `json:"assign,omitempty"`
	Pending map[string]string          `json:"pending,omitempty"` // task ID -> reason
	Desired map[string]types.TaskState `json:"desired,omitempty"` // task ID -> desired state
	Delete  []string                   `json:"delete,omitempty"`
	Now     time.Time                  `json:"now"`
	// Grace gives tasks told to shut down (in Desired) a stop grace of
	// their own (up -t, down -t): task ID -> grace.
	Grace map[string]time.Duration `json:"grace,omitempty"`
}

// TaskStatusUpdate is one batch of an agent's task reports. Result: nil.
type TaskStatusUpdate struct {
	NodeID   string             `json:"node_id"`
	Statuses []types.TaskStatus `json:"statuses"`
	Now      time.Time          `json:"now"`
}

// TaskStatusBatch is several agents' reports, gathered by the leader while
// an entry was in flight, applied in order as one entry: one Raft entry,
// one store write and one wake of the watchers for them all, instead of
// one each (issue 20: every report was an entry of its own). Result: nil.
type TaskStatusBatch struct {
	Reports []TaskStatusUpdate `json:"reports"`
}

// UpsertNode registers a node or updates its description. Result: the
// stored *types.Node.
type UpsertNode struct {
	Node *types.Node `json:"node"`
}

// SetNodeStatus records a node's status change. Result: nil.
//
// A node marked down loses its unfinished tasks in the same apply, so no
// leader change can leave a down node with tasks "running". Now stamps
// them; entries written before Now existed have none and change only the
// node (a separate TaskStatusUpdate followed them), so replaying an old log
// gives the state it gave then.
type SetNodeStatus struct {
	ID     string           `json:"id"`
	Status types.NodeStatus `json:"status"`
	Now    time.Time        `json:"now,omitzero"`
}

// SetNodeAvailability drains or activates a node (`berth node drain`).
// Result: the updated *types.Node.
type SetNodeAvailability struct {
	ID           string             `json:"id"`
	Availability types.Availability `json:"availability"`
}

// UpdateNodeLabels adds (or overwrites) and removes node labels. Result: the
// updated *types.Node.
type UpdateNodeLabels struct {
	ID     string            `json:"id"`
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// DeleteNode removes a node (`berth node rm`). Its unfinished tasks become
// lost and unwanted, so controllers replace them elsewhere. Result: nil.
type DeleteNode struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

func (UpsertApp) kind() commandKind           { return kindUpsertApp }
func (DeleteApp) kind() commandKind           { return kindDeleteApp }
func (PurgeApp) kind() commandKind            { return kindPurgeApp }
func (TeardownDone) kind() commandKind        { return kindTeardownDone }
func (ScaleService) kind() commandKind        { return kindScaleService }
func (TaskUpdates) kind() commandKind         { return kindTaskUpdates }
func (TaskStatusUpdate) kind() commandKind    { return kindTaskStatusUpdate }
func (TaskStatusBatch) kind() commandKind     { return kindTaskStatusBatch }
func (UpsertNode) kind() commandKind          { return kindUpsertNode }
func (SetNodeStatus) kind() commandKind       { return kindSetNodeStatus }
func (SetNodeAvailability) kind() commandKind { return kindSetNodeAvailability }
func (UpdateNodeLabels) kind() commandKind    { return kindUpdateNodeLabels }
func (DeleteNode) kind() commandKind          { return kindDeleteNode }
func (SetServiceStatus) kind() commandKind    { return kindSetServiceStatus }

// Encode serialises a command for raft: its kind and JSON, checksummed
// (see codec.go).
func Encode(cmd Command) ([]byte, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", cmd, err)
	}
	return frame(cmd.kind(), body), nil
}

// decode is the inverse of Encode. It also reads the entries of managers
// from before checksums. Its errors wrap ErrCorrupt.
func decode(data []byte) (Command, error) {
	k, body, err := unframe(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	cmd, err := newCommand(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := json.Unmarshal(body, cmd); err != nil {
		return nil, fmt.Errorf("%w: decode command %T: %w", ErrCorrupt, cmd, err)
	}
	return cmd, nil
}

// newCommand returns a pointer to a zero command of kind k.
func newCommand(k commandKind) (Command, error) {
	switch k {
	case kindUpsertApp:
		return &UpsertApp{}, nil
	case kindDeleteApp:
		return &DeleteApp{}, nil
	case kindPurgeApp:
		return &PurgeApp{}, nil
	case kindTeardownDone:
		return &TeardownDone{}, nil
	case kindScaleService:
		return &ScaleService{}, nil
	case kindTaskUpdates:
		return &TaskUpdates{}, nil
	case kindTaskStatusUpdate:
		return &TaskStatusUpdate{}, nil
	case kindTaskStatusBatch:
		return &TaskStatusBatch{}, nil
	case kindUpsertNode:
		return &UpsertNode{}, nil
	case kindSetNodeStatus:
		return &SetNodeStatus{}, nil
	case kindSetNodeAvailability:
		return &SetNodeAvailability{}, nil
	case kindUpdateNodeLabels:
		return &UpdateNodeLabels{}, nil
	case kindDeleteNode:
		return &DeleteNode{}, nil
	case kindInitCluster:
		return &InitCluster{}, nil
	case kindSetTokens:
		return &SetTokens{}, nil
	case kindUpsertManager:
		return &UpsertManager{}, nil
	case kindRemoveManager:
		return &RemoveManager{}, nil
	case kindRevokeNode:
		return &RevokeNode{}, nil
	case kindSetAdminToken:
		return &SetAdminToken{}, nil
	case kindSetServiceStatus:
		return &SetServiceStatus{}, nil
	case kindUnpinVolumes:
		return &UnpinVolumes{}, nil
	case kindUpsertMachine:
		return &UpsertMachine{}, nil
	case kindDeleteMachine:
		return &DeleteMachine{}, nil
	case kindUpsertImage:
		return &UpsertImage{}, nil
	case kindDeleteImage:
		return &DeleteImage{}, nil
	case kindImageReplica:
		return &ImageReplica{}, nil
	case kindSetDeployment:
		return &SetDeployment{}, nil
	case kindRollbackService:
		return &RollbackService{}, nil
	case kindPromoteDeployment:
		return &PromoteDeployment{}, nil
	case kindStopServices:
		return &StopServices{}, nil
	case kindStartServices:
		return &StartServices{}, nil
	case kindRestartServices:
		return &RestartServices{}, nil
	case kindRemoveStoppedTasks:
		return &RemoveStoppedTasks{}, nil
	case kindRemoveRuns:
		return &RemoveRuns{}, nil
	case kindCreateNetwork:
		return &CreateNetwork{}, nil
	case kindDeleteNetwork:
		return &DeleteNetwork{}, nil
	case kindRemoveVolume:
		return &RemoveVolume{}, nil
	case kindVolumeRemoved:
		return &VolumeRemoved{}, nil
	}
	return nil, fmt.Errorf("decode command: unknown kind %d; is this manager older than the cluster?", k)
}
