package harness

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// Defaults of a Workload.
const (
	defaultWrites       = 100
	defaultWithin       = 2 * time.Minute
	defaultWritePause   = 10 * time.Millisecond
	failedWritePause    = 250 * time.Millisecond
	writeTimeout        = 10 * time.Second
	maxErrorsRemembered = 5
)

// WorkloadOptions shape a Workload. The zero value makes 100 writes named
// "w-0001"... through every manager, within two minutes.
type WorkloadOptions struct {
	// Prefix names the writes: Prefix-0001, Prefix-0002, ... (default "w").
	// Give each workload of one cluster its own prefix.
	Prefix string
	// Writes is how many writes to make (default 100), one at a time.
	Writes int
	// Within bounds the workload: it stops then whatever the count
	// (default 2m).
	Within time.Duration
	// Pause is the time between two writes (default 10ms; at least 250ms
	// after a failed one), so a workload spans the faults a test injects
	// meanwhile.
	Pause time.Duration
	// Managers receive the writes in turn (default: all of the cluster's
	// managers when the workload starts); followers forward to the leader.
	Managers []*Manager
}

// Workload is a bounded stream of writes through the managers' APIs, run by
// its own goroutine while the test injects faults. Each write submits an app
// named Prefix-NNNN with one exec service of zero replicas: one Raft commit
// that starts no task and that any manager can be asked for by name. The
// workload records which writes were acknowledged (a 2xx answer): those
// must never be lost (see CheckWrites). A write that failed has an unknown
// outcome (it may have been committed before its answer was lost) and is
// only counted.
//
//	w := c.StartWorkload(t, harness.WorkloadOptions{Prefix: "lk", Writes: 150})
//	w.WaitAcked(t, 50, time.Minute) // the fault lands mid-stream
//	leader.Kill(t)
//	res := w.Wait(t)
//	lost := c.CheckWrites(t, res.Acked, time.Minute)
type Workload struct {
	opts    WorkloadOptions
	clients []*api.Client
	names   []string // of the managers, as clients
	cmd     []string // the exec service's command

	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	res     WorkloadResult
	lastAck time.Time
}

// WorkloadResult is what a Workload did.
type WorkloadResult struct {
	// Acked names the acknowledged writes, in order.
	Acked []string
	// Failed counts the writes answered with an error or not at all.
	Failed int
	// Errors are the first few errors, for logs.
	Errors []string
	// Elapsed is how long the workload ran.
	Elapsed time.Duration
	// LongestGap is the longest time between two acknowledgements (or from
	// the start to the first): how long the cluster took no write.
	LongestGap time.Duration
}

// StartWorkload starts a workload against c; it stops by itself after
// opts.Writes writes or opts.Within, and at the latest when tb ends.
func (c *Cluster) StartWorkload(tb testing.TB, opts WorkloadOptions) *Workload {
	tb.Helper()
	opts = opts.withDefaults(c)
	if len(opts.Managers) == 0 {
		tb.Fatal("a workload needs at least one manager")
	}
	w := &Workload{opts: opts, done: make(chan struct{}), cmd: []string{c.AppBin}}
	for _, m := range opts.Managers {
		w.clients = append(w.clients, m.Client())
		w.names = append(w.names, m.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Within)
	w.cancel = cancel
	tb.Cleanup(func() {
		cancel()
		<-w.done
	})
	go w.run(ctx)
	return w
}

func (o WorkloadOptions) withDefaults(c *Cluster) WorkloadOptions {
	if o.Prefix == "" {
		o.Prefix = "w"
	}
	if o.Writes <= 0 {
		o.Writes = defaultWrites
	}
	if o.Within <= 0 {
		o.Within = defaultWithin
	}
	if o.Pause <= 0 {
		o.Pause = defaultWritePause
	}
	if o.Managers == nil {
		o.Managers = append([]*Manager(nil), c.Managers...)
	}
	return o
}

// run makes the writes, one at a time, each to the next manager in turn.
func (w *Workload) run(ctx context.Context) {
	defer close(w.done)
	began := time.Now()
	w.mu.Lock()
	w.lastAck = began
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.res.Elapsed = time.Since(began)
		w.mu.Unlock()
	}()
	for i := range w.opts.Writes {
		if ctx.Err() != nil {
			return
		}
		name := fmt.Sprintf("%s-%04d", w.opts.Prefix, i+1)
		k := i % len(w.clients)
		err := w.write(ctx, w.clients[k], name)
		w.record(name, w.names[k], err)
		// A client backs off after an error, as users and agents do: a
		// leaderless moment does not use up the workload.
		pause := w.opts.Pause
		if err != nil {
			pause = max(pause, failedWritePause)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// write submits the app name through one manager.
func (w *Workload) write(ctx context.Context, c *api.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	app := &types.App{Name: name, Services: []*types.Service{{
		Name: "s", Driver: types.DriverExec, Command: w.cmd, Mode: types.ModeReplicated, Replicas: 0,
	}}}
	_, err := c.SubmitApp(ctx, app)
	return err
}

func (w *Workload) record(name, via string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		now := time.Now()
		w.res.Acked = append(w.res.Acked, name)
		w.res.LongestGap = max(w.res.LongestGap, now.Sub(w.lastAck))
		w.lastAck = now
		return
	}
	w.res.Failed++
	if len(w.res.Errors) < maxErrorsRemembered {
		w.res.Errors = append(w.res.Errors, fmt.Sprintf("%s via %s: %v", name, via, err))
	}
}

// Result is what the workload has done so far.
func (w *Workload) Result() WorkloadResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.res
	r.Acked = append([]string(nil), w.res.Acked...)
	r.Errors = append([]string(nil), w.res.Errors...)
	return r
}

// WaitAcked waits until at least n writes were acknowledged, so a test can
// land its fault in the middle of the stream.
func (w *Workload) WaitAcked(tb testing.TB, n int, timeout time.Duration) {
	tb.Helper()
	WaitFor(tb, timeout, fmt.Sprintf("%d writes of %s acknowledged", n, w.opts.Prefix), func() error {
		r := w.Result()
		if len(r.Acked) >= n {
			return nil
		}
		select {
		case <-w.done:
			tb.Fatalf("workload %s ended with %d writes acknowledged, before %d: %v", w.opts.Prefix, len(r.Acked), n, r.Errors)
		default:
		}
		return fmt.Errorf("%d acknowledged, %d failed: %v", len(r.Acked), r.Failed, r.Errors)
	})
}

// Wait waits until the workload has ended (it is bounded by Within) and
// returns what it did.
func (w *Workload) Wait(tb testing.TB) WorkloadResult {
	tb.Helper()
	select {
	case <-w.done:
	case <-time.After(w.opts.Within + writeTimeout + time.Minute):
		tb.Fatalf("workload %s outlived its bound of %s", w.opts.Prefix, w.opts.Within)
	}
	return w.Result()
}

// Stop ends the workload now and returns what it did.
func (w *Workload) Stop(tb testing.TB) WorkloadResult {
	tb.Helper()
	w.cancel()
	return w.Wait(tb)
}
