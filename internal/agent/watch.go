package agent

import (
	"context"
	"errors"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
)

// nodeTasksWait is how long one blocking query on the node's tasks waits.
const nodeTasksWait = 30 * time.Second

// watch follows the node's tasks with blocking queries and hands each
// answer to the task loop through a mailbox that keeps only the newest.
func (a *Agent) watch(ctx context.Context, mailbox chan *api.NodeTasks) {
	var index uint64
	// held is the last whole answer, of index heldAt: the manager is told
	// of it and may answer with the tasks changed since (api.NodeTasks.Merge).
	var held *api.NodeTasks
	var heldAt uint64
	retry := newBackoff(a.timing.RetryEvery)
	for ctx.Err() == nil {
		asked := time.Now()
		// The client gives the query its wait and a margin, and moves it
		// to another manager when this one stops answering.
		nt, meta, err := a.client.NodeTasksSince(ctx, a.NodeID(), api.QueryOptions{Index: index, Wait: nodeTasksWait}, heldAt)
		if err == nil {
			if err = nt.Merge(held); err != nil {
				// Not the answer the manager counted on: ask for all, now.
				a.log.Info("the manager's changes do not fit this node's tasks; fetching them all", "err", err)
				held, heldAt, index = nil, 0, 0 // 0: answer at once
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, api.ErrNotFound) {
				signal(a.register)
			}
			a.log.Warn("fetch the node's tasks failed; will retry", "err", err)
			api.SleepCtx(ctx, retry.Next())
			continue
		}
		// Nothing new, and at once: this manager did not block (index 0,
		// which asks for an answer now, from a manager whose tables are
		// empty; or a bug). Asking again at once would spin.
		spun := meta.Index <= index && time.Since(asked) < nodeTasksWait/2
		// Taken as it is, even if lower: a manager whose state was reset
		// would otherwise make the agent wait for an index it has not
		// reached. Never 0, which would not block.
		index = max(meta.Index, 1)
		held, heldAt = nt, meta.Index
		deliverLatest(mailbox, nt)
		if spun {
			api.SleepCtx(ctx, retry.Next())
		} else {
			retry.Reset()
		}
	}
}

// deliverLatest puts v in a 1-buffered mailbox, replacing an unread value.
// It must have a single sender.
func deliverLatest[T any](mailbox chan T, v T) {
	select {
	case mailbox <- v:
		return
	default:
	}
	select {
	case <-mailbox:
	default:
	}
	mailbox <- v
}

// driverStatus is a status change seen by a named driver.
type driverStatus struct {
	driver string
	status *driver.Status
}

// forwardEvents hands a driver's events to the task loop until ctx is done,
// subscribing again when a stream ends (an engine restart). Events only
// save latency: the loop also polls every driver.
func (a *Agent) forwardEvents(ctx context.Context, name string, d driver.Driver, out chan<- driverStatus) {
	retry := newBackoff(a.timing.RetryEvery)
	for {
		events, err := d.Events(ctx)
		if err != nil {
			a.log.Warn("driver events unavailable; relying on polling", "driver", name, "err", err)
		} else {
			retry.Reset()
			forward(ctx, name, events, out)
		}
		if !api.SleepCtx(ctx, retry.Next()) {
			return
		}
	}
}

// forward copies one event stream until it ends or ctx is done.
func forward(ctx context.Context, name string, events <-chan *driver.Status, out chan<- driverStatus) {
	for {
		select {
		case <-ctx.Done():
			return
		case st, ok := <-events:
			if !ok {
				return
			}
			select {
			case out <- driverStatus{driver: name, status: st}:
			case <-ctx.Done():
				return
			}
		}
	}
}
