// Package sim is the simulated task runtime of scale runs (berth sim): a
// driver that runs nothing and keeps each task's life in memory, so one
// process can be hundreds of nodes talking to real managers through the
// real agent. What a task does is set per node (Config.Default) and per
// service by deploy labels (see Behaviour), and the node's capacity is
// what Config gives, not what the machine has.
//
// The driver still enforces what a node enforces: a start that would take
// the node past its capacity (the reservations of the tasks it runs) or
// bind a host port another of its tasks holds fails, as a real engine
// refuses an allocated port, so a scheduler that overcommits a node shows
// as rejected tasks rather than passing unseen.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// The deploy labels (Compose deploy.labels) that set a service's
// Behaviour, overriding the node's default.
const (
	LabelStartDelay = "berth.sim.start_delay" // a Go duration: "200ms"
	LabelExitAfter  = "berth.sim.exit_after"  // a Go duration: "5s"
	LabelExitCode   = "berth.sim.exit_code"   // an integer, 0 to 255
	LabelFail       = "berth.sim.fail"        // a message: the start fails with it
)

// maxDelay bounds the durations a label may give, so a typo ("5000h")
// cannot hold a start slot of the agent for ever.
const maxDelay = 24 * time.Hour

// Behaviour is what a simulated task does.
type Behaviour struct {
	// StartDelay is how long a start takes before the task runs.
	StartDelay time.Duration
	// ExitAfter, when positive, is how long the task runs before it exits
	// by itself with ExitCode; zero: it runs until stopped.
	ExitAfter time.Duration
	ExitCode  int
	// Fail, when set, makes every start fail with this message.
	Fail string
}

// Config configures the driver of one simulated node.
type Config struct {
	// Node is the node's name, for messages: the driver is built before
	// the node has joined and knows its ID.
	Node string
	// Capacity bounds the reservations of the tasks the node runs at once;
	// a zero field is unbounded.
	Capacity types.ResourceAmounts
	// Default is what a task does when its service's labels say nothing.
	Default Behaviour
}

// Driver is the sim driver of one node. It is safe for concurrent use.
type Driver struct {
	cfg Config

	mu    sync.Mutex
	tasks map[string]*task
	// used is the sum of the reservations of the tasks starting or running.
	used types.ResourceAmounts
	// ports are the host ports bound by tasks starting or running.
	ports map[portKey]string
	subs  map[chan *driver.Status]struct{}
}

type portKey struct {
	proto string
	port  uint16
}

// task is one simulated task: its status, what it holds and its lines of log.
type task struct {
	st      driver.Status
	reserve types.ResourceAmounts
	ports   []portKey
	held    bool // reserve and ports are counted in the driver's totals
	exit    *time.Timer
	log     []string
}

// eventBuffer is how many events wait for a slow reader before the driver
// drops them: the agent polls List as well, so a dropped event costs
// latency only, and the driver never blocks on its reader.
const eventBuffer = 256

// New returns the driver of one simulated node.
func New(cfg Config) (*Driver, error) {
	if cfg.Node == "" {
		return nil, errors.New("the sim driver needs the node's name")
	}
	if err := cfg.Default.check(); err != nil {
		return nil, err
	}
	return &Driver{cfg: cfg, tasks: map[string]*task{}, ports: map[portKey]string{}, subs: map[chan *driver.Status]struct{}{}}, nil
}

func (b Behaviour) check() error {
	if b.StartDelay < 0 || b.StartDelay > maxDelay || b.ExitAfter < 0 || b.ExitAfter > maxDelay {
		return fmt.Errorf("sim start delay and exit time must be from 0 to %s", maxDelay)
	}
	if b.ExitCode < 0 || b.ExitCode > 255 {
		return fmt.Errorf("sim exit code %d is not from 0 to 255", b.ExitCode)
	}
	return nil
}

// BehaviourOf is what a task of svc does on a node whose default is def:
// the service's deploy labels override it field by field. An error names
// the label and says what it takes.
func BehaviourOf(svc *types.Service, def Behaviour) (Behaviour, error) {
	b := def
	if svc == nil {
		return b, nil
	}
	labels := svc.DeployLabels
	durations := []struct {
		key string
		to  *time.Duration
	}{{LabelStartDelay, &b.StartDelay}, {LabelExitAfter, &b.ExitAfter}}
	for _, d := range durations {
		v, ok := labels[d.key]
		if !ok {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur < 0 || dur > maxDelay {
			return b, fmt.Errorf("label %s of service %s is %q: give a duration from 0 to %s, e.g. 200ms", d.key, svc.Name, v, maxDelay)
		}
		*d.to = dur
	}
	if v, ok := labels[LabelExitCode]; ok {
		code, err := strconv.Atoi(v)
		if err != nil || code < 0 || code > 255 {
			return b, fmt.Errorf("label %s of service %s is %q: give an exit code from 0 to 255", LabelExitCode, svc.Name, v)
		}
		b.ExitCode = code
	}
	if v, ok := labels[LabelFail]; ok {
		b.Fail = v
	}
	return b, nil
}

// Name is the driver's name, types.DriverSim.
func (d *Driver) Name() string { return types.DriverSim }

// Start simulates a start: it takes the task's reservations and host
// ports, waits the start delay and runs the task. A task the driver holds
// already is adopted: its status is returned.
func (d *Driver) Start(ctx context.Context, cfg *driver.TaskConfig) (*driver.Status, error) {
	if cfg == nil || cfg.Task == nil || cfg.Service == nil {
		return nil, errors.New("sim driver: a start needs the task and its service")
	}
	b, err := BehaviourOf(cfg.Service, d.cfg.Default)
	if err != nil {
		return nil, err
	}
	if b.Fail != "" {
		return nil, fmt.Errorf("simulated start failure: %s", b.Fail)
	}
	t, adopted, err := d.admit(cfg)
	if err != nil || adopted {
		return t, err
	}
	if b.StartDelay > 0 {
		timer := time.NewTimer(b.StartDelay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			d.mu.Lock()
			d.forget(cfg.Task.ID)
			d.mu.Unlock()
			return nil, fmt.Errorf("sim start of task %s cancelled: %w", cfg.Task.ID, ctx.Err())
		}
	}
	return d.run(cfg.Task.ID, b, cfg.Service.Healthcheck != nil)
}

// admit checks that the task fits the node and records it as created,
// holding its reservations and ports; adopted is true (with its status)
// for a task the driver holds already.
func (d *Driver) admit(cfg *driver.TaskConfig) (*driver.Status, bool, error) {
	id := cfg.Task.ID
	reserve := cfg.Service.Resources.Reservations
	var ports []portKey
	for _, p := range cfg.Service.Ports {
		// Ingress ports on an overlay node are the mesh's, bound once per
		// node by the agent, not by the task.
		if p.Published == 0 || (cfg.Overlay && p.Mode != types.PortHost) {
			continue
		}
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		ports = append(ports, portKey{proto, p.Published})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.tasks[id]; t != nil {
		st := t.st
		return &st, true, nil
	}
	if err := d.fits(reserve); err != nil {
		return nil, false, err
	}
	for _, p := range ports {
		if holder, taken := d.ports[p]; taken {
			return nil, false, fmt.Errorf("host port %d/%s is already allocated on node %s (by task %s)", p.port, p.proto, d.cfg.Node, holder)
		}
	}
	for _, p := range ports {
		d.ports[p] = id
	}
	d.used = d.used.Add(reserve)
	d.tasks[id] = &task{
		st: driver.Status{
			TaskID: id, App: cfg.Task.App, Service: cfg.Task.Service, State: driver.StateCreated,
			ContainerID: "sim:" + id,
		},
		reserve: reserve, ports: ports, held: true,
		log: []string{"created on simulated node " + d.cfg.Node},
	}
	return nil, false, nil
}

// fits says why reserve does not fit beside the node's tasks, or nil.
func (d *Driver) fits(reserve types.ResourceAmounts) error {
	c, u := d.cfg.Capacity, d.used
	switch {
	case c.NanoCPUs > 0 && u.NanoCPUs+reserve.NanoCPUs > c.NanoCPUs:
		return fmt.Errorf("node %s is out of CPU: %d of %d nano CPUs reserved, the task asks %d more", d.cfg.Node, u.NanoCPUs, c.NanoCPUs, reserve.NanoCPUs)
	case c.MemoryBytes > 0 && u.MemoryBytes+reserve.MemoryBytes > c.MemoryBytes:
		return fmt.Errorf("node %s is out of memory: %d of %d bytes reserved, the task asks %d more", d.cfg.Node, u.MemoryBytes, c.MemoryBytes, reserve.MemoryBytes)
	case c.Pids > 0 && u.Pids+reserve.Pids > c.Pids:
		return fmt.Errorf("node %s is out of pids: %d of %d reserved, the task asks %d more", d.cfg.Node, u.Pids, c.Pids, reserve.Pids)
	}
	return nil
}

// run moves a created task to running and arms its exit.
// A task with a healthcheck passes it as it runs: the sim probes nothing.
func (d *Driver) run(id string, b Behaviour, healthcheck bool) (*driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tasks[id]
	if t == nil || t.st.State != driver.StateCreated {
		return nil, fmt.Errorf("sim task %s was removed while it started", id)
	}
	t.st.State, t.st.StartedAt = driver.StateRunning, time.Now()
	if healthcheck {
		t.st.Health = types.HealthHealthy
	}
	t.log = append(t.log, "running")
	if b.ExitAfter > 0 {
		code := b.ExitCode
		t.exit = time.AfterFunc(b.ExitAfter, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.exited(id, code, fmt.Sprintf("exited by itself after %s with code %d", b.ExitAfter, code))
		})
	}
	st := t.st
	return &st, nil
}

// exited ends a running task with code, releasing what it held, and tells
// the subscribers. d.mu is held.
func (d *Driver) exited(id string, code int, line string) {
	t := d.tasks[id]
	if t == nil || t.st.State != driver.StateRunning {
		return
	}
	if t.exit != nil {
		t.exit.Stop()
		t.exit = nil
	}
	t.st.State, t.st.ExitCode, t.st.FinishedAt = driver.StateExited, code, time.Now()
	t.log = append(t.log, line)
	d.release(t)
	st := t.st
	for ch := range d.subs {
		select {
		case ch <- &st:
		default: // the agent's poll of List catches it
		}
	}
}

// release gives back the task's reservations and ports. d.mu is held.
func (d *Driver) release(t *task) {
	if !t.held {
		return
	}
	t.held = false
	d.used = d.used.Add(types.ResourceAmounts{NanoCPUs: -t.reserve.NanoCPUs, MemoryBytes: -t.reserve.MemoryBytes, Pids: -t.reserve.Pids})
	for _, p := range t.ports {
		if d.ports[p] == t.st.TaskID {
			delete(d.ports, p)
		}
	}
}

// forget drops a task and what it held. d.mu is held.
func (d *Driver) forget(id string) {
	t := d.tasks[id]
	if t == nil {
		return
	}
	if t.exit != nil {
		t.exit.Stop()
	}
	d.release(t)
	delete(d.tasks, id)
}

// Stop ends a running task at once, with code 0: a simulated process
// honours its stop signal within any grace period.
func (d *Driver) Stop(_ context.Context, taskID string, _ time.Duration, signal string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if signal == "" {
		signal = "SIGTERM"
	}
	d.exited(taskID, 0, "stopped by "+signal)
	return nil
}

// Remove deletes the task; a task the driver does not hold is no error.
func (d *Driver) Remove(_ context.Context, taskID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forget(taskID)
	return nil
}

// Inspect returns the task's status, or driver.ErrNotFound.
func (d *Driver) Inspect(_ context.Context, taskID string) (*driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tasks[taskID]
	if t == nil {
		return nil, fmt.Errorf("sim task %s: %w", taskID, driver.ErrNotFound)
	}
	st := t.st
	return &st, nil
}

// List returns every task the node holds, running or exited.
func (d *Driver) List(_ context.Context) ([]*driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*driver.Status, 0, len(d.tasks))
	for _, t := range d.tasks {
		st := t.st
		out = append(out, &st)
	}
	return out, nil
}

// Events delivers tasks' exits until ctx is done.
func (d *Driver) Events(ctx context.Context) (<-chan *driver.Status, error) {
	ch := make(chan *driver.Status, eventBuffer)
	d.mu.Lock()
	d.subs[ch] = struct{}{}
	d.mu.Unlock()
	context.AfterFunc(ctx, func() {
		d.mu.Lock()
		delete(d.subs, ch)
		d.mu.Unlock()
		close(ch)
	})
	return ch, nil
}

// Logs writes the task's simulated life, one line per change: what a user
// of berth logs sees of a sim task. Follow is not supported: the lines
// written are all there are until the next change.
func (d *Driver) Logs(_ context.Context, taskID string, o driver.LogOptions, w io.Writer) error {
	d.mu.Lock()
	t := d.tasks[taskID]
	var lines []string
	if t != nil {
		lines = append(lines, t.log...)
	}
	d.mu.Unlock()
	if t == nil {
		return fmt.Errorf("sim task %s: %w", taskID, driver.ErrNotFound)
	}
	if o.Tail > 0 && len(lines) > o.Tail {
		lines = lines[len(lines)-o.Tail:]
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, "sim: "+l); err != nil {
			return err
		}
	}
	return nil
}

// RemoveApp has nothing to remove: the sim makes no networks or volumes.
func (d *Driver) RemoveApp(context.Context, string, bool) error { return nil }

// Used is the sum of the reservations of the tasks starting or running.
func (d *Driver) Used() types.ResourceAmounts {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used
}

// Exec is refused: a simulated task runs no process to run a command in.
func (d *Driver) Exec(_ context.Context, taskID string, _ driver.ExecOptions, _ driver.ExecStreams) (int, error) {
	if err := d.held(taskID); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("task %s is simulated (driver sim, berth sim): it runs no process to exec in", taskID)
}

// CopyFrom is refused: a simulated task has no filesystem.
func (d *Driver) CopyFrom(_ context.Context, taskID, _ string, _ int64, _ func(), _ io.Writer) error {
	return d.copyRefused(taskID)
}

// CopyTo is refused, as CopyFrom.
func (d *Driver) CopyTo(_ context.Context, taskID, _ string, _ int64, _ io.Reader) error {
	return d.copyRefused(taskID)
}

func (d *Driver) copyRefused(taskID string) error {
	if err := d.held(taskID); err != nil {
		return err
	}
	return fmt.Errorf("task %s is simulated (driver sim) and has no filesystem: %w", taskID, driver.ErrCopyUnsupported)
}

// held is nil for a task the driver holds, else a wrapped driver.ErrNotFound.
func (d *Driver) held(taskID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tasks[taskID] == nil {
		return fmt.Errorf("sim task %s: %w", taskID, driver.ErrNotFound)
	}
	return nil
}

var _ driver.Driver = (*Driver)(nil)
