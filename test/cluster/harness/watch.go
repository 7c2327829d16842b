package harness

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// watchInterval is how often a Watch samples; watchCallTimeout bounds one
// read, so a frozen manager costs a sample little.
const (
	watchInterval    = 200 * time.Millisecond
	watchCallTimeout = time.Second
)

// Watch samples the cluster while a fault runs, from its own goroutine:
// the nodes and tasks as every manager that answers lists them, and the task
// processes that really run on the hosts (the cluster's app binary, found in
// /proc) matched to their tasks by process ID. It records every node shown
// not ready and every slot (app, service, replica) with more than one live
// process at once: the two things a fault must not cause beyond what the
// test allows.
//
//	w := c.Watch(t)
//	leader.Kill(t)
//	...
//	obs := w.Stop(t)
//	obs.ExpectNoNodeDown(t)
//	obs.ExpectNoDuplicatesBeyond(t, 0)
type Watch struct {
	clients []*api.Client
	appBin  string
	began   time.Time

	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	obs   Observed
	spans map[string]*span // open duplicate spans by slot
}

// span is one stretch of consecutive samples in which a slot had two or
// more live processes.
type span struct{ first, last time.Time }

// Observed is what a Watch saw.
type Observed struct {
	// Samples counts the samples at least one manager answered.
	Samples int
	// NodesDown names each node a sample showed not ready, with the time
	// since the watch began when it was first seen so.
	NodesDown map[string]time.Duration
	// DupPeak is the most processes beyond one per slot in one sample:
	// 0 when no two processes of one slot ever ran at once.
	DupPeak int
	// DupLongest is the longest stretch in which one slot had more than one
	// live process (from its first sample to one interval past its last).
	DupLongest time.Duration
	// DupLast is when a duplicate was last seen (zero: never).
	DupLast time.Time
	// DupSlots names the slots ever duplicated.
	DupSlots []string
}

// Watch starts watching c's managers and hosts; Stop ends it (it also ends
// when tb does).
func (c *Cluster) Watch(tb testing.TB) *Watch {
	tb.Helper()
	w := &Watch{appBin: c.AppBin, began: time.Now(), done: make(chan struct{}), spans: map[string]*span{}}
	w.obs.NodesDown = map[string]time.Duration{}
	for _, m := range c.Managers {
		w.clients = append(w.clients, m.Client())
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	tb.Cleanup(func() {
		cancel()
		<-w.done
	})
	go w.run(ctx)
	return w
}

func (w *Watch) run(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		w.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sample takes one look at the nodes, the tasks and the processes.
func (w *Watch) sample(ctx context.Context) {
	views := w.read(ctx)
	if len(views) == 0 {
		return
	}
	pids := processesOf(w.appBin)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.obs.Samples++
	var tasks []*types.Task
	for _, v := range views {
		for _, n := range v.nodes {
			if _, seen := w.obs.NodesDown[n.Name]; n.Status != types.NodeReady && !seen {
				w.obs.NodesDown[n.Name] = now.Sub(w.began)
			}
		}
		tasks = append(tasks, v.tasks...)
	}
	w.countDuplicates(now, perSlot(tasks, pids))
}

// view is what one manager served in one sample.
type view struct {
	nodes []*types.Node
	tasks []*types.Task
}

// read asks every manager at once for the nodes and every task, and returns
// the answers of those that answered in time: a node marked down shows on
// any of them, a lagging one included.
func (w *Watch) read(ctx context.Context) []view {
	views := make([]*view, len(w.clients))
	var wg sync.WaitGroup
	for i, c := range w.clients {
		wg.Go(func() {
			if v, err := readCluster(ctx, c); err == nil {
				views[i] = v
			}
		})
	}
	wg.Wait()
	var out []view
	for _, v := range views {
		if v != nil {
			out = append(out, *v)
		}
	}
	return out
}

func readCluster(ctx context.Context, c *api.Client) (*view, error) {
	ctx, cancel := context.WithTimeout(ctx, watchCallTimeout)
	defer cancel()
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{})
	if err != nil {
		return nil, err
	}
	return &view{nodes: nodes, tasks: tasks}, nil
}

// perSlot counts the live processes of pids per slot of their task (the
// tasks may repeat, from several managers); a process no task names yet
// (it is just starting) is not counted.
func perSlot(tasks []*types.Task, pids []int) map[string]int {
	slotOf := make(map[int]string, len(tasks))
	live := map[int]bool{} // the PID is a live task's: an old one's reused
	for _, t := range tasks {
		pid, err := TaskPID(t)
		if err != nil || live[pid] {
			continue
		}
		slotOf[pid], live[pid] = slotKey(t), !t.State.Terminal()
	}
	counts := map[string]int{}
	for _, pid := range pids {
		if s, ok := slotOf[pid]; ok {
			counts[s]++
		}
	}
	return counts
}

// slotKey names a task's replica: app/service/slot, or app/service/node
// for a global service.
func slotKey(t *types.Task) string {
	if t.Slot == 0 {
		return t.App + "/" + t.Service + "/" + t.NodeID
	}
	return t.App + "/" + t.Service + "/" + strconv.Itoa(t.Slot)
}

// countDuplicates folds one sample's processes per slot into the record.
func (w *Watch) countDuplicates(now time.Time, counts map[string]int) {
	extra := 0
	for slot, n := range counts {
		if n < 2 {
			continue
		}
		extra += n - 1
		w.obs.DupLast = now
		if sp := w.spans[slot]; sp != nil {
			sp.last = now
			continue
		}
		w.spans[slot] = &span{first: now, last: now}
		if !slices.Contains(w.obs.DupSlots, slot) {
			w.obs.DupSlots = append(w.obs.DupSlots, slot)
		}
	}
	w.obs.DupPeak = max(w.obs.DupPeak, extra)
	for slot, sp := range w.spans {
		if counts[slot] < 2 {
			w.closeSpan(slot, sp)
		}
	}
}

func (w *Watch) closeSpan(slot string, sp *span) {
	w.obs.DupLongest = max(w.obs.DupLongest, sp.last.Sub(sp.first)+watchInterval)
	delete(w.spans, slot)
}

// Stop ends the watch and returns what it saw. A watch that no manager
// ever answered fails tb: it saw nothing.
func (w *Watch) Stop(tb testing.TB) Observed {
	tb.Helper()
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for slot, sp := range w.spans {
		w.closeSpan(slot, sp)
	}
	if w.obs.Samples == 0 {
		tb.Error("the watch never reached a manager: it saw nothing")
	}
	obs := w.obs
	slices.Sort(obs.DupSlots)
	return obs
}

// Seen is what the watch has seen so far; it goes on watching.
func (w *Watch) Seen() Observed {
	w.mu.Lock()
	defer w.mu.Unlock()
	obs := w.obs
	obs.NodesDown = maps.Clone(w.obs.NodesDown)
	obs.DupSlots = slices.Sorted(slices.Values(w.obs.DupSlots))
	return obs
}

// ExpectNoNodeDown fails tb if any node was seen not ready. A manager that
// restarts replays its log, so it shows the nodes' past states again:
// watch a cluster whose history has no node down.
func (o Observed) ExpectNoNodeDown(tb testing.TB) {
	tb.Helper()
	if len(o.NodesDown) > 0 {
		tb.Errorf("nodes were marked down during the fault (name: when, since the watch began): %v", o.NodesDown)
	}
}

// ExpectNoDuplicatesBeyond fails tb if one slot had two processes running
// at once for longer than bound (0: ever). A start-first update runs two of
// a slot by design while the new one starts: bound it by the update.
func (o Observed) ExpectNoDuplicatesBeyond(tb testing.TB, bound time.Duration) {
	tb.Helper()
	if o.DupPeak > 0 && o.DupLongest > bound {
		tb.Errorf("two processes of one slot ran at once for %s (bound %s), %d extra at peak, slots %v",
			o.DupLongest, bound, o.DupPeak, o.DupSlots)
	}
}

// String renders the observations on one line, for logs.
func (o Observed) String() string {
	return fmt.Sprintf("%d samples, nodes down %v, duplicates: peak %d, longest %s, slots %v",
		o.Samples, o.NodesDown, o.DupPeak, o.DupLongest, o.DupSlots)
}
