package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// fakeDriver runs tasks in memory. It outlives agents, as a node's
// containers do, so a restarted agent finds what the last one started.
type fakeDriver struct {
	name string
	// startHook, if set, runs inside Start before the task exists; it may
	// block (to hold starts in flight) or fail the start.
	startHook func(ctx context.Context, cfg *driver.TaskConfig) error

	mu          sync.Mutex
	tasks       map[string]*driver.Status
	configs     map[string]*driver.TaskConfig
	starts      map[string]int
	inFlight    int
	maxInFlight int
	stops       []stopCall
	removes     []string
	removedApps []appCall
	// removeAppErr is what RemoveApp returns (an engine that cannot remove a network).
	removeAppErr error
	logOpts      []driver.LogOptions
	logLines     chan string // lines written to a followed log
	events       chan *driver.Status
}

type stopCall struct {
	id     string
	grace  time.Duration
	signal string
}

type appCall struct {
	app     string
	volumes bool
}

func newFakeDriver(name string) *fakeDriver {
	return &fakeDriver{
		name:     name,
		tasks:    map[string]*driver.Status{},
		configs:  map[string]*driver.TaskConfig{},
		starts:   map[string]int{},
		logLines: make(chan string, 16),
		events:   make(chan *driver.Status, 1024),
	}
}

var _ driver.Driver = (*fakeDriver)(nil)

func (f *fakeDriver) Name() string { return f.name }

func (f *fakeDriver) Start(ctx context.Context, cfg *driver.TaskConfig) (*driver.Status, error) {
	f.mu.Lock()
	id := cfg.Task.ID
	f.starts[id]++
	if st := f.tasks[id]; st != nil { // adopt, as real drivers do
		f.mu.Unlock()
		return copyStatus(st), nil
	}
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	var err error
	if f.startHook != nil {
		err = f.startHook(ctx, cfg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight--
	if err != nil {
		return nil, err
	}
	st := &driver.Status{
		TaskID: id, App: cfg.Task.App, Service: cfg.Task.Service, State: driver.StateRunning,
		ContainerID: "c-" + id, StartedAt: time.Now(),
	}
	f.tasks[id], f.configs[id] = st, cfg
	return copyStatus(st), nil
}

func (f *fakeDriver) Stop(ctx context.Context, id string, grace time.Duration, signal string) error {
	f.mu.Lock()
	f.stops = append(f.stops, stopCall{id: id, grace: grace, signal: signal})
	f.mu.Unlock()
	f.exit(id, 143, "")
	return nil
}

func (f *fakeDriver) Remove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removes = append(f.removes, id)
	delete(f.tasks, id)
	return nil
}

func (f *fakeDriver) Inspect(ctx context.Context, id string) (*driver.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.tasks[id]
	if st == nil {
		return nil, fmt.Errorf("inspect %s: %w", id, driver.ErrNotFound)
	}
	return copyStatus(st), nil
}

func (f *fakeDriver) List(ctx context.Context) ([]*driver.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*driver.Status, 0, len(f.tasks))
	for _, st := range f.tasks {
		out = append(out, copyStatus(st))
	}
	return out, nil
}

func (f *fakeDriver) Events(ctx context.Context) (<-chan *driver.Status, error) {
	return f.events, nil
}

// Logs writes "line <n>" for each of three lines (or the Tail last), then
// with Follow every line sent on logLines until ctx is done.
func (f *fakeDriver) Logs(ctx context.Context, id string, o driver.LogOptions, w io.Writer) error {
	f.mu.Lock()
	f.logOpts = append(f.logOpts, o)
	f.mu.Unlock()
	first := 1
	if o.Tail > 0 {
		first = max(1, 4-o.Tail)
	}
	for i := first; i <= 3; i++ {
		if _, err := fmt.Fprintf(w, "%s line %d\n", id, i); err != nil {
			return err
		}
	}
	for o.Follow {
		select {
		case <-ctx.Done():
			return nil
		case line := <-f.logLines:
			if _, err := io.WriteString(w, line+"\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeDriver) RemoveApp(ctx context.Context, app string, volumes bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removedApps = append(f.removedApps, appCall{app: app, volumes: volumes})
	return f.removeAppErr
}

// Test controls.

// put adds a task as if an earlier agent had started it.
func (f *fakeDriver) put(st driver.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks[st.TaskID] = &st
}

// exit ends a task with a code and an optional reason, and says so.
func (f *fakeDriver) exit(id string, code int, reason string) {
	f.change(id, func(st *driver.Status) {
		st.State, st.ExitCode, st.Error, st.FinishedAt = driver.StateExited, code, reason, time.Now()
	})
}

func (f *fakeDriver) setHealth(id string, h types.Health) {
	f.change(id, func(st *driver.Status) { st.Health = h })
}

func (f *fakeDriver) change(id string, fn func(*driver.Status)) {
	f.mu.Lock()
	st := f.tasks[id]
	if st == nil {
		f.mu.Unlock()
		return
	}
	fn(st)
	ev := copyStatus(st)
	f.mu.Unlock()
	select {
	case f.events <- ev:
	default: // a missed event: the agent's polling catches up
	}
}

func (f *fakeDriver) startCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts[id]
}

func (f *fakeDriver) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tasks[id] != nil
}

func (f *fakeDriver) lock(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func copyStatus(st *driver.Status) *driver.Status {
	c := *st
	return &c
}

func (f *fakeDriver) Exec(ctx context.Context, taskID string, o driver.ExecOptions, s driver.ExecStreams) (int, error) {
	return 0, driver.ErrNotFound
}

func (f *fakeDriver) CopyFrom(ctx context.Context, taskID, path string, limit int64, start func(), w io.Writer) error {
	return driver.ErrNotFound
}

func (f *fakeDriver) CopyTo(ctx context.Context, taskID, path string, limit int64, r io.Reader) error {
	return driver.ErrNotFound
}
