package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// statusSender is the one manager call the reporter makes.
type statusSender func(ctx context.Context, statuses []types.TaskStatus) error

// reporter batches task status changes into few ReportStatus calls: a
// change waits a short while for others to join it (never longer than a
// hard maximum), and a batch the manager did not take is kept and sent
// again. The latest state of a task replaces an older one still waiting.
type reporter struct {
	send   statusSender
	timing Timing
	log    *slog.Logger

	mu      sync.Mutex
	pending map[string]types.TaskStatus
	order   []string      // task IDs in the order they first became pending
	wake    chan struct{} // 1-buffered: something was added
}

func newReporter(send statusSender, timing Timing, log *slog.Logger) *reporter {
	return &reporter{send: send, timing: timing, log: log, pending: map[string]types.TaskStatus{}, wake: make(chan struct{}, 1)}
}

// Add queues a status; it never blocks.
func (r *reporter) Add(ts types.TaskStatus) {
	r.mu.Lock()
	r.put(ts)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) put(ts types.TaskStatus) {
	if _, ok := r.pending[ts.TaskID]; !ok {
		r.order = append(r.order, ts.TaskID)
	}
	r.pending[ts.TaskID] = ts
}

// Run sends batches until ctx is done.
func (r *reporter) Run(ctx context.Context) {
	retry := newBackoff(r.timing.RetryEvery)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		if !r.gather(ctx) {
			return
		}
		for !r.flush(ctx) {
			if !api.SleepCtx(ctx, retry.Next()) {
				return
			}
		}
		retry.Reset()
	}
}

// gather waits until changes stop arriving for ReportWait, or ReportMaxWait
// has passed since the first one. It returns false when ctx is done.
func (r *reporter) gather(ctx context.Context) bool {
	hard := time.NewTimer(r.timing.ReportMaxWait)
	defer hard.Stop()
	quiet := time.NewTimer(r.timing.ReportWait)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-hard.C:
			return true
		case <-quiet.C:
			return true
		case <-r.wake:
			quiet.Reset(r.timing.ReportWait)
		}
	}
}

// flush sends what is pending; on failure it puts back every status that a
// newer one has not replaced meanwhile, and returns false.
func (r *reporter) flush(ctx context.Context) bool {
	r.mu.Lock()
	batch := make([]types.TaskStatus, 0, len(r.order))
	for _, id := range r.order {
		batch = append(batch, r.pending[id])
	}
	r.pending, r.order = map[string]types.TaskStatus{}, nil
	r.mu.Unlock()
	if len(batch) == 0 {
		return true
	}
	err := r.send(ctx, batch)
	if err == nil {
		r.log.Debug("reported task states", "tasks", len(batch))
		return true
	}
	if refused(err) {
		// Sending the same batch again cannot help.
		r.log.Error("manager refused task states; dropped them", "tasks", len(batch), "err", err)
		return true
	}
	r.log.Warn("report task states to the manager failed; will retry", "tasks", len(batch), "err", err)
	r.mu.Lock()
	for _, ts := range batch {
		if _, newer := r.pending[ts.TaskID]; !newer {
			r.put(ts)
		}
	}
	r.mu.Unlock()
	return false
}

// refused reports whether the manager answered that the request itself is
// wrong (4xx), other than not knowing the node, which re-registering fixes.
func refused(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 &&
		ae.Status != http.StatusNotFound && ae.Status != http.StatusTooManyRequests
}
