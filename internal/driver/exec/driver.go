package execdriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// Config configures an exec driver for one node.
type Config struct {
	NodeID  string
	DataDir string // task state, logs and secret files live under DataDir/tasks
	Logger  *slog.Logger
	// PollEvery is how often a process that is not the driver's child is
	// checked for exit (default 500ms).
	PollEvery time.Duration
	// SecretsDir is a tmpfs where tasks' secret and config files live, so
	// secrets never reach a persistent disk (default /dev/shm/berth/<node>).
	SecretsDir string
}

// Driver runs tasks as host processes. It is safe for concurrent use.
type Driver struct {
	nodeID    string
	root      string // DataDir/tasks
	secrets   string // Config.SecretsDir
	log       *slog.Logger
	pollEvery time.Duration

	ctx    context.Context // ends the driver's watchers and healthchecks
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	tasks map[string]*task
	subs  map[chan *driver.Status]struct{}
}

var _ driver.Driver = (*Driver)(nil)

// task is one process the driver knows, live or exited.
type task struct {
	dir  string
	done chan struct{} // closed once the process has exited and rec says how

	mu     sync.Mutex
	rec    *record
	health types.Health
	// healthOutput is the last failing probe's output, reported with an
	// unhealthy health.
	healthOutput string
}

// New opens the driver's data directory and re-attaches to every task
// recorded there.
func New(cfg Config) (*Driver, error) {
	if cfg.NodeID == "" || cfg.DataDir == "" {
		return nil, errors.New("exec driver: a node ID and a data directory are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root := filepath.Join(cfg.DataDir, "tasks")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("exec driver: create %s: %w", root, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if cfg.SecretsDir == "" {
		cfg.SecretsDir = filepath.Join("/dev/shm", "berth", cfg.NodeID)
	}
	d := &Driver{
		nodeID: cfg.NodeID, root: root, secrets: cfg.SecretsDir, log: log.With("driver", "exec", "node", cfg.NodeID),
		pollEvery: cfg.PollEvery, ctx: ctx, cancel: cancel,
		tasks: map[string]*task{}, subs: map[chan *driver.Status]struct{}{},
	}
	if d.pollEvery <= 0 {
		d.pollEvery = 500 * time.Millisecond
	}
	if err := d.reattach(); err != nil {
		cancel()
		return nil, err
	}
	return d, nil
}

// Name is "exec".
func (d *Driver) Name() string { return "exec" }

// Close stops the driver's watchers and healthchecks. Processes keep
// running; a new Driver on the same DataDir re-attaches to them.
func (d *Driver) Close() error {
	d.cancel()
	d.wg.Wait()
	return nil
}

// reattach loads every recorded task and watches those still running.
func (d *Driver) reattach() error {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return fmt.Errorf("exec driver: read %s: %w", d.root, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(d.root, e.Name())
		rec, err := loadRecord(dir)
		if err != nil {
			d.log.Warn("skipping task directory without usable state", "dir", dir, "err", err)
			continue
		}
		if rec.NodeID != d.nodeID {
			continue
		}
		t := &task{dir: dir, rec: rec, done: make(chan struct{})}
		d.tasks[rec.TaskID] = t
		if rec.Exited {
			close(t.done)
			continue
		}
		d.log.Info("re-attaching to task", "task", rec.TaskID, "pid", rec.PID)
		d.watchForeign(t)
		d.startHealth(t)
	}
	return nil
}

func (d *Driver) task(id string) (*task, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.tasks[id]
	if !ok {
		return nil, driver.ErrNotFound
	}
	return t, nil
}

// status is the task's Status now.
func (t *task) status() *driver.Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rec
	st := &driver.Status{
		TaskID: r.TaskID, App: r.App, Service: r.Service,
		State: driver.StateRunning, Health: t.health,
		ContainerID: "pid:" + strconv.Itoa(r.PID), StartedAt: r.StartedAt,
	}
	if t.health == types.HealthUnhealthy {
		st.HealthOutput = t.healthOutput
	}
	if r.Exited {
		st.State, st.ExitCode, st.FinishedAt, st.Error = driver.StateExited, r.ExitCode, r.FinishedAt, r.Error
	} else {
		st.Paused = stopped(r.PID)
	}
	return st
}

// exited records how the process ended, persists it, and tells subscribers.
// Only the first call counts: the child waiter and a poller may both see it.
func (d *Driver) exited(t *task, code int, errMsg string) {
	t.mu.Lock()
	if t.rec.Exited {
		t.mu.Unlock()
		return
	}
	t.rec.Exited, t.rec.ExitCode, t.rec.Error, t.rec.FinishedAt = true, code, errMsg, time.Now().UTC()
	err := t.rec.save(t.dir)
	t.mu.Unlock()
	if err != nil {
		d.log.Error("persist task exit", "task", t.rec.TaskID, "err", err)
	}
	// An exited task is never started again (a restart is a new task), and
	// it may stay listed for long (history, a scale to 0): its secrets
	// leave the node now, not when the task is removed.
	if err := os.RemoveAll(d.secretsOf(t.rec.TaskID)); err != nil {
		d.log.Warn("remove the secret files of an exited task", "task", t.rec.TaskID, "err", err)
	}
	close(t.done)
	d.publish(t.status())
}

// Inspect returns the task's status, or driver.ErrNotFound.
func (d *Driver) Inspect(_ context.Context, taskID string) (*driver.Status, error) {
	t, err := d.task(taskID)
	if err != nil {
		return nil, fmt.Errorf("inspect task %s: %w", taskID, err)
	}
	return t.status(), nil
}

// List returns every task of this node, running or exited.
func (d *Driver) List(_ context.Context) ([]*driver.Status, error) {
	d.mu.Lock()
	ts := make([]*task, 0, len(d.tasks))
	for _, t := range d.tasks {
		ts = append(ts, t)
	}
	d.mu.Unlock()
	out := make([]*driver.Status, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.status())
	}
	return out, nil
}

// RemoveApp has nothing to do: exec tasks make no networks or volumes, and
// Remove deletes each task's files.
func (d *Driver) RemoveApp(context.Context, string, bool) error { return nil }
