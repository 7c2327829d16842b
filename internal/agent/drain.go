package agent

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// A replica told to stop leaves the network map at once (types.Task.Serving),
// so every node takes it out of its DNS and mesh; its own node waits the
// service's drain delay before the stop signal, so that the map reaches
// every node first and the connections in flight finish. The deadline is
// kept in the store: a restarted agent waits only what is left of it.

// bucketDrains maps a task ID to the time its drain ends.
var bucketDrains = []byte("drains")

// drainKeep is how long a drain's record outlives its end: past it, the
// task is long stopped or gone, and the record is dropped.
const drainKeep = 10 * time.Minute

// drains are the drain deadlines of this run, and the timers that wake the
// task loop when one ends.
type drains struct {
	mu     sync.Mutex
	until  map[string]time.Time
	timers map[string]*time.Timer
	// delays are the drain delays of the tasks started in this run, for
	// when their spec is no longer sent (their app is being removed).
	delays map[string]time.Duration
	closed bool
}

// maxDelays bounds the delays remembered: past it they are forgotten, and
// a task whose app is removed drains types.DefaultDrainDelay.
const maxDelays = 8192

// remember keeps the drain delay of a task being started.
func (d *drains) remember(id string, delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.delays == nil || len(d.delays) >= maxDelays {
		d.delays = map[string]time.Duration{}
	}
	d.delays[id] = delay
}

// delay is task id's drain delay as remembered, else the default.
func (d *drains) delay(id string) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.delays[id]; ok {
		return v
	}
	return types.DefaultDrainDelay
}

// draining reports whether t, which the manager wants stopped, must wait
// before its stop signal: the mesh runs (without it Docker's DNS answers
// until the container stops, and a wait gains nothing), the replica served
// (one that never became healthy, or fell unhealthy, is out of the map
// already) and its drain has not ended. The first call starts the drain.
func (l *loop) draining(t *types.Task) bool {
	m := l.a.mesh
	if m == nil {
		return false
	}
	svc := l.desired.Services[types.ServiceID(t.App, t.Service)]
	if !t.Healthy(svc) {
		return false
	}
	delay := m.drains.delay(t.ID)
	if svc != nil {
		delay = svc.Drain()
	}
	return l.drainFor(t.ID, delay)
}

// drainingGone is draining for a task the manager no longer lists because
// its app is being removed (`berth down`): its app left the network map at
// once, and its spec is no longer sent, so the delay is the one its service
// had when it started here. A task that was not running and healthy (as its
// driver last showed) served nothing.
func (l *loop) drainingGone(r *taskRecord) bool {
	m := l.a.mesh
	if m == nil || !l.appDeleting(r.local.App) || r.status == nil || r.status.State != driver.StateRunning {
		return false
	}
	if h := r.status.Health; h == types.HealthStarting || h == types.HealthUnhealthy {
		return false
	}
	return l.drainFor(r.id, m.drains.delay(r.id))
}

// drainFor starts task id's drain of delay, or goes on with the one begun,
// and reports whether it lasts still.
func (l *loop) drainFor(id string, delay time.Duration) bool {
	m := l.a.mesh
	now := time.Now()
	until, known := m.drains.get(id)
	if !known {
		until = l.store.drainUntil(id, now, delay, l.a.log.Warn)
		m.drains.set(id, until, now, l.wake)
		if now.Before(until) {
			l.a.log.Info("draining task before its stop signal", "task", id, "for", until.Sub(now).Round(time.Millisecond))
		}
	}
	return now.Before(until)
}

// wake makes the loop reconcile (a status of no task changes nothing).
func (l *loop) wake() {
	select {
	case l.statusCh <- driverStatus{}:
	default: // the loop has news to handle, and reconciles after it
	}
}

func (d *drains) get(id string) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.until[id]
	return t, ok
}

// set records a drain and arms its wake-up; it drops what ended long ago.
func (d *drains) set(id string, until, now time.Time, wake func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	if d.until == nil {
		d.until, d.timers = map[string]time.Time{}, map[string]*time.Timer{}
	}
	for old, u := range d.until {
		if now.Sub(u) > drainKeep {
			delete(d.until, old)
			delete(d.timers, old)
		}
	}
	d.until[id] = until
	if now.Before(until) {
		d.timers[id] = time.AfterFunc(until.Sub(now), wake)
	}
}

// stop disarms every wake-up: the agent is stopping.
func (d *drains) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	for _, t := range d.timers {
		t.Stop()
	}
}

// drainUntil is the end of task id's drain: the one a previous run of the
// agent started, or now plus delay, recorded. Records ended long ago are
// dropped. Should the store fail, the drain is not remembered: a restart
// would wait it again, which is safe.
func (s *store) drainUntil(id string, now time.Time, delay time.Duration, warn func(string, ...any)) time.Time {
	until := now.Add(delay)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketDrains)
		if err != nil {
			return err
		}
		var prev time.Time
		if v := b.Get([]byte(id)); v != nil && prev.UnmarshalBinary(v) == nil {
			// A clock set back must not stretch the drain.
			until = minTime(prev, until)
			return nil
		}
		var stale [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			var u time.Time
			if u.UnmarshalBinary(v) != nil || now.Sub(u) > drainKeep {
				stale = append(stale, k)
			}
			return nil
		})
		for _, k := range stale {
			_ = b.Delete(k)
		}
		v, err := until.MarshalBinary()
		if err != nil {
			return err
		}
		return b.Put([]byte(id), v)
	})
	if err != nil {
		warn("record a task's drain; a restarted agent would wait it again", "task", id, "err", err)
	}
	return until
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
