package server

import (
	"context"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/state"
)

// Agents' task reports are committed in groups: a report that arrives while
// entries are in flight waits for the next one, which carries every report
// that queued meanwhile (a TaskStatusBatch). A lone report is committed at
// once, as before. With each report its own entry, a 10,000-task deploy on
// 100 nodes was some 800 entries, each a Raft round trip, a store write and
// a wake of every watcher (issue 20).
const (
	// reportsInFlight is how many report entries may be in flight at once:
	// two, so one is gathered while the other commits.
	reportsInFlight = 2
	// maxBatchReports and maxBatchStatuses bound one entry (a report's own
	// size is bounded by api.MaxRequestBytes): about 0.5 MB of JSON at
	// most, and few enough task changes that memdb still fires only the
	// watches they touch (see state.TaskUpdates.Split).
	maxBatchReports  = 512
	maxBatchStatuses = state.MaxStatusesPerEntry
	// reportCommitTimeout bounds a batch's commit, whose context is no one
	// caller's: a caller that gives up does not fail the others.
	reportCommitTimeout = 30 * time.Second
)

// reportBatcher gathers reports into entries.
type reportBatcher struct {
	commit func(context.Context, state.Command) (any, error)

	mu       sync.Mutex
	queue    []*queuedReport
	inFlight int
}

type queuedReport struct {
	upd  state.TaskStatusUpdate
	done chan error // buffered: the flusher never waits for the caller
}

// submit commits upd, in an entry with the reports queued beside it, and
// returns that entry's error, or ctx's if the caller gives up first (the
// report may still be committed: reports only move tasks forward, so the
// agent's retry is harmless).
func (b *reportBatcher) submit(ctx context.Context, upd state.TaskStatusUpdate) error {
	q := &queuedReport{upd: upd, done: make(chan error, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, q)
	start := b.inFlight < reportsInFlight
	if start {
		b.inFlight++
	}
	b.mu.Unlock()
	if start {
		go b.flush()
	}
	select {
	case err := <-q.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush commits what is queued, entry after entry, until the queue is empty.
func (b *reportBatcher) flush() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		batch := b.take()
		b.mu.Unlock()

		var cmd state.Command = batch[0].upd
		if len(batch) > 1 {
			all := &state.TaskStatusBatch{Reports: make([]state.TaskStatusUpdate, len(batch))}
			for i, q := range batch {
				all.Reports[i] = q.upd
			}
			cmd = all
		}
		ctx, cancel := context.WithTimeout(context.Background(), reportCommitTimeout)
		_, err := b.commit(ctx, cmd)
		cancel()
		for _, q := range batch {
			q.done <- err
		}
	}
}

// take removes the queue's head, up to one entry's bounds (always at least
// one report). b.mu is held.
func (b *reportBatcher) take() []*queuedReport {
	n, statuses := 0, 0
	for n < len(b.queue) && n < maxBatchReports {
		s := len(b.queue[n].upd.Statuses)
		if n > 0 && statuses+s > maxBatchStatuses {
			break
		}
		statuses += s
		n++
	}
	batch := b.queue[:n:n]
	b.queue = append([]*queuedReport(nil), b.queue[n:]...)
	return batch
}
