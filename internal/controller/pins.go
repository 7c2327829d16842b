package controller

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/scheduler"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// A replica whose named volumes are pinned (types.VolumePin) may only be
// placed on the pinned node, where its data is. When that node cannot take
// it (drained, down, removed, full) the task waits, saying so and how to
// move it, and never starts elsewhere with empty volumes. Two tasks of one
// pinned slot never run on its node at once: a replacement waits for the
// task it replaces to stop (stop-first), so one data directory is never
// written by two processes.

// pinnedRequest builds the scheduler request for a pending task t of svc,
// whose tasks are siblings. When its slot is pinned the request is bound to
// the pinned node and the pin is returned; hold, when set, is why the task
// must wait before being placed.
func pinnedRequest(view *state.View, app *types.App, svc *types.Service, t *types.Task, siblings []*types.Task) (req scheduler.Request, pin *types.VolumePin, hold string) {
	req = scheduler.Request{Task: t, Service: svc}
	if t.Slot == 0 || len(svc.PinnedVolumes(app)) == 0 {
		return req, nil, ""
	}
	pin = view.VolumePin(app.Name, svc.Name, t.Slot)
	if pin == nil {
		return req, nil, ""
	}
	if n := view.Node(pin.NodeID); n == nil || n.Status != types.NodeReady || n.Availability != types.AvailabilityActive {
		return req, pin, pinReason(view, pin, "")
	}
	for _, o := range siblings {
		if o.ID != t.ID && o.Slot == t.Slot && o.NodeID == pin.NodeID && o.HoldsResources() {
			return req, pin, fmt.Sprintf("waiting for task %s to stop on node %s: two tasks of %s never use its volumes at once",
				o.ID, nodeLabel(view, pin.NodeID), pin.Replica())
		}
	}
	bound := *t
	bound.NodeID = pin.NodeID
	req.Task = &bound
	return req, pin, ""
}

// pinReason says why a pinned task waits and how to move it. why is the
// scheduler's verdict on the node, used when the node itself is fine.
func pinReason(view *state.View, pin *types.VolumePin, why string) string {
	n := view.Node(pin.NodeID)
	var state string
	switch {
	case n == nil:
		state = "which was removed from the cluster"
	case n.Status != types.NodeReady:
		state = "which is down"
	case n.Availability != types.AvailabilityActive:
		state = "which is drained"
	default:
		// The scheduler names the node by ID; the sentence already does.
		state = "which cannot take it: " + strings.TrimPrefix(why, "node "+pin.NodeID+": ")
	}
	noun := "volume %s of %s is"
	if len(pin.Volumes) > 1 {
		noun = "volumes %s of %s are"
	}
	return fmt.Sprintf(noun+" on node %s, %s; to start it elsewhere with empty volumes, run berth service unpin %s",
		strings.Join(pin.Volumes, ", "), pin.Replica(), nodeLabel(view, pin.NodeID), state, pin.Replica())
}

// nodeLabel names a node for users: its name, or a short ID when it is gone.
func nodeLabel(view *state.View, id string) string {
	if n := view.Node(id); n != nil && n.Name != "" {
		return n.Name
	}
	return id[:min(len(id), 12)]
}
