package state

import (
	"context"
	"fmt"
	"sync"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/types"
)

// Events: every write's changes to deployments, tasks and nodes, kept in a
// bounded ring on each manager (`berth events`). They are made as each
// committed entry is applied, stamped with its Raft index, so every manager
// that applied the same entries holds the same events: a client resumes on
// another manager after a failover from the last index it saw, without a
// gap. A manager knows nothing from before it started or restored a
// snapshot, nor what its ring dropped: Events says where such a gap is.

// EventRingSize bounds the events a manager keeps.
const EventRingSize = 4096

// Event is one change of a deployment, task or node.
type Event struct {
	Index   uint64 `json:"index"`
	Kind    string `json:"kind"`   // "deployment", "task" or "node"
	Action  string `json:"action"` // "created", "updated" or "deleted"
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	App     string `json:"app,omitempty"`
	Service string `json:"service,omitempty"`
	State   string `json:"state,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Gap is a range of Raft indexes whose events this manager does not have.
type Gap struct {
	From, To uint64
}

type eventRing struct {
	mu sync.Mutex
	// events[start:] are the events kept, oldest first, at most
	// EventRingSize. The ones before start have dropped off: the slice is
	// compacted once they are as many as the ring holds, so an add costs
	// O(1) amortised (copying the whole ring on every add, once full, was
	// a tenth of a follower's CPU applying a 10,000-task deploy).
	events []Event
	start  int
	// floor is the highest index whose events may be missing: from
	// before the ring started, or dropped off its end.
	floor   uint64
	notify  chan struct{} // closed and replaced when events are added
	retired bool          // replaced by a restore: waiters look again
}

// retire wakes the ring's waiters for good: a restore replaced it.
func (r *eventRing) retire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.retired {
		r.retired = true
		close(r.notify)
	}
}

func newEventRing(floor uint64) *eventRing {
	return &eventRing{floor: floor, notify: make(chan struct{})}
}

func (r *eventRing) add(evs []Event) {
	if len(evs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired {
		return
	}
	r.events = append(r.events, evs...)
	if over := len(r.events) - r.start - EventRingSize; over > 0 {
		r.start += over
		r.floor = max(r.floor, r.events[r.start-1].Index)
	}
	if r.start >= EventRingSize {
		r.events = append(make([]Event, 0, 2*EventRingSize), r.events[r.start:]...)
		r.start = 0
	}
	close(r.notify)
	r.notify = make(chan struct{})
}

// Events returns the events after index since, waiting until there is one
// or ctx is done, and the gap between since and the first event kept, if
// this manager lacks some (nil: none). since 0 asks for every event kept.
func (s *Store) Events(ctx context.Context, since uint64) ([]Event, *Gap, error) {
	for {
		s.mu.RLock()
		r := s.events
		s.mu.RUnlock()
		r.mu.Lock()
		var gap *Gap
		if since > 0 && since < r.floor {
			gap = &Gap{From: since + 1, To: r.floor}
		}
		var out []Event
		for _, e := range r.events[r.start:] {
			if e.Index > since {
				out = append(out, e)
			}
		}
		notify := r.notify
		r.mu.Unlock()
		if len(out) > 0 || gap != nil {
			return out, gap, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-notify:
		}
	}
}

// eventsOf turns a committed write's changes into events.
func eventsOf(index uint64, changes memdb.Changes) []Event {
	var out []Event
	for _, ch := range changes {
		var e *Event
		switch ch.Table {
		case TableDeployments:
			e = deploymentEvent(ch)
		case TableTasks:
			e = taskEvent(ch)
		case TableNodes:
			e = nodeEvent(ch)
		}
		if e != nil {
			e.Index = index
			out = append(out, *e)
		}
	}
	return out
}

func action(ch memdb.Change) string {
	switch {
	case ch.Created():
		return "created"
	case ch.Deleted():
		return "deleted"
	}
	return "updated"
}

func deploymentEvent(ch memdb.Change) *Event {
	d, _ := ch.After.(*types.Deployment)
	if ch.Deleted() {
		return nil // history trimmed or the app purged: nothing happened to it
	}
	if old, _ := ch.Before.(*types.Deployment); old != nil && old.State == d.State && old.Updated == d.Updated &&
		old.Healthy == d.Healthy && old.Failed == d.Failed && old.Promoted == d.Promoted {
		return nil
	}
	detail := fmt.Sprintf("%d/%d updated, %d up", d.Updated, d.Total, d.Healthy)
	if d.Failed > 0 {
		detail += fmt.Sprintf(", %d failed", d.Failed)
	}
	if d.Reason != "" {
		detail += "; " + d.ReasonCode + ": " + d.Reason
	}
	return &Event{Kind: "deployment", Action: action(ch), ID: d.ID, App: d.App, Service: d.Service, State: string(d.State), Detail: detail}
}

func taskEvent(ch memdb.Change) *Event {
	if ch.Deleted() {
		return nil // history bounded (gc) or the app purged
	}
	t, _ := ch.After.(*types.Task)
	if old, _ := ch.Before.(*types.Task); old != nil && old.State == t.State && old.DesiredState == t.DesiredState && old.Health == t.Health {
		return nil // progress, addresses: not news
	}
	e := &Event{Kind: "task", Action: action(ch), ID: t.ID, Name: t.Name(), App: t.App, Service: t.Service, State: string(t.State),
		Detail: fmt.Sprintf("version %d, desired %s", t.ServiceVersion, t.DesiredState)}
	if t.Health != types.HealthNone {
		e.Detail += ", " + string(t.Health)
	}
	if t.Error != "" && t.State.Terminal() {
		e.Detail += ": " + t.Error
	}
	return e
}

func nodeEvent(ch memdb.Change) *Event {
	obj := ch.After
	if ch.Deleted() {
		obj = ch.Before
	}
	n, _ := obj.(*types.Node)
	if old, _ := ch.Before.(*types.Node); old != nil && !ch.Deleted() && old.Status == n.Status && old.Availability == n.Availability {
		return nil // heartbeats and descriptions
	}
	return &Event{Kind: "node", Action: action(ch), ID: n.ID, Name: n.Name, State: string(n.Status), Detail: "availability " + string(n.Availability)}
}
