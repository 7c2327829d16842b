package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// Heartbeats tells when a node last said it was alive. The leader keeps this
// in memory only: beats never reach Raft.
type Heartbeats interface {
	Last(nodeID string) (time.Time, bool)
}

// NodeMonitor marks nodes down when their heartbeat is older than TTL, and
// their unfinished tasks lost, so the Reconciler replaces them elsewhere.
type NodeMonitor struct {
	store  Store
	commit Committer
	beats  Heartbeats
	clock  Clock
	ttl    time.Duration
	log    *slog.Logger
	// since is when this leader took office: a node it has not heard from
	// yet gets a full TTL from then, so a new leader does not mark every
	// node down before the first beats reach it.
	since time.Time
	// holdUntil is set while most ready nodes are silent together (see
	// massSilence): none is marked down before it.
	holdUntil time.Time
	// cur is the TTL in force (HeartbeatTTL of ttl and the nodes), which
	// the managers tell the agents; shrinkAt is when a smaller one may
	// take over (see Check).
	cur      atomic.Int64
	shrinkAt time.Time
}

// MaxBeatsPerSecond is the heartbeat rate a leader is asked to take at
// most. Agents beat three times a TTL, so past 500 nodes the TTL grows
// with the cluster (30 s at 1,000 nodes, 300 s at 10,000), as Nomad scales
// its own: a fixed TTL made 1,000 sim nodes send 200 beats a second (each
// a TLS request, forwarded by a follower) to a leader that was busy with
// a 100,000-task deploy, and nodes went down by the hundred, their tasks
// lost and placed again, faster than the deploy could run them.
const MaxBeatsPerSecond = 100

// HeartbeatTTL is how long a node may be silent in a cluster of nodes
// nodes whose configured TTL is base: base, or longer where the beats
// would pass MaxBeatsPerSecond.
func HeartbeatTTL(base time.Duration, nodes int) time.Duration {
	return max(base, time.Duration(3*nodes)*time.Second/MaxBeatsPerSecond)
}

// Most of a cluster falling silent at once is far more often the managers'
// own trouble than the hosts' (an overloaded leader whose forwarded beats
// time out, a manager cut off from the agents): marking them all down would
// lose every task they hold and pile their rescheduling onto the manager
// that is already behind. 1,000 simulated nodes under a 100,000-task deploy
// went that way: beats late on a starved leader, 336 nodes marked down,
// 128,620 tasks lost, and the placement never caught up (issue 20). So when
// more than half of the ready nodes (and at least massSilenceMin) are
// silent in one check, the monitor waits massSilenceHold TTLs more before
// marking any of them down; beats that resume meanwhile clear them. A
// genuine loss of most hosts is still marked, that much later, as
// Kubernetes' node lifecycle controller stops evicting when a zone is
// mostly unhealthy.
const (
	massSilenceMin  = 3
	massSilenceHold = 2
)

// massSilence reports whether silent of ready nodes is a mass silence.
func massSilence(silent, ready int) bool {
	return silent >= massSilenceMin && 2*silent > ready
}

// NewNodeMonitor builds a NodeMonitor; call it when leadership starts.
func NewNodeMonitor(store Store, commit Committer, beats Heartbeats, clock Clock, ttl time.Duration, log *slog.Logger) *NodeMonitor {
	if clock == nil {
		clock = RealClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &NodeMonitor{store: store, commit: commit, beats: beats, clock: clock, ttl: ttl, log: log, since: clock.Now()}
	m.cur.Store(int64(HeartbeatTTL(ttl, len(store.View().Nodes()))))
	return m
}

// TTL is the heartbeat TTL in force, which the managers tell the agents
// (in answers to registrations and heartbeats): the configured one, longer
// in a large cluster (HeartbeatTTL).
func (m *NodeMonitor) TTL() time.Duration { return time.Duration(m.cur.Load()) }

// follow makes the TTL in force fit nodes nodes at now. A longer one
// applies at once (agents that still beat more often are safe); a shorter
// one only once the longer has passed since the cluster shrank, by when
// every agent has heard it from a heartbeat's answer.
func (m *NodeMonitor) follow(nodes int, now time.Time) time.Duration {
	want, cur := HeartbeatTTL(m.ttl, nodes), m.TTL()
	switch {
	case want > cur:
		m.shrinkAt = time.Time{}
	case want == cur:
		m.shrinkAt = time.Time{}
		return cur
	case m.shrinkAt.IsZero():
		m.shrinkAt = now.Add(cur)
		return cur
	case now.Before(m.shrinkAt):
		return cur
	}
	m.log.Info("heartbeat TTL follows the cluster's size", "nodes", nodes, "ttl", want)
	m.cur.Store(int64(want))
	return want
}

// Run checks nodes every quarter TTL until ctx is done.
//
// A tick that comes much later than due means this manager itself did not
// run (SIGSTOP, a VM paused, a starved CPU): the silence it would see is its
// own, and as a deposed leader waking up it may still believe it leads for
// a moment. So every node gets a full TTL again from then, as for a new
// leader.
func (m *NodeMonitor) Run(ctx context.Context) error {
	every := max(m.ttl/4, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	prev := m.since
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			now := m.clock.Now()
			if gap := now.Sub(prev); gap > max(m.TTL()/2, 2*every) {
				m.log.Warn("this manager did not run for a while; giving every node a full TTL before marking it down", "stalled", gap.Round(time.Millisecond))
				m.since = now
			}
			if err := m.Check(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("node check failed", "err", err)
			}
			// From the check's end: a check that marked many nodes down,
			// an entry each, is this monitor's own time, not a stall (it
			// once took 53 s and reset every node's grace).
			prev = m.clock.Now()
		}
	}
}

// Check marks every ready node whose heartbeat expired down, unless most
// of them expired together (massSilence) and the hold has not passed.
func (m *NodeMonitor) Check(ctx context.Context) error {
	now := m.clock.Now()
	view := m.store.View()
	type expired struct {
		node   *types.Node
		silent time.Duration
	}
	var silent []expired
	ready := 0
	nodes := view.Nodes()
	ttl := m.follow(len(nodes), now)
	for _, n := range nodes {
		if n.Status != types.NodeReady {
			continue
		}
		ready++
		last, ok := m.beats.Last(n.ID)
		if !ok || last.Before(m.since) {
			last = m.since
		}
		if now.Sub(last) > ttl {
			silent = append(silent, expired{n, now.Sub(last)})
		}
	}
	if !massSilence(len(silent), ready) {
		m.holdUntil = time.Time{}
	} else {
		if m.holdUntil.IsZero() {
			m.holdUntil = now.Add(massSilenceHold * ttl)
			m.log.Warn("most nodes missed their heartbeats together; waiting before marking them down, in case this manager is the one behind",
				"silent", len(silent), "ready", ready, "until", m.holdUntil.Format(time.RFC3339))
		}
		if now.Before(m.holdUntil) {
			return nil
		}
	}
	for _, e := range silent {
		m.log.Warn("node missed its heartbeats; marking it down", "node", e.node.Name, "id", e.node.ID, "silent", e.silent.Round(time.Millisecond))
		if err := m.markDown(ctx, e.node, now); err != nil {
			return err
		}
	}
	return nil
}

// markDown marks n down; the same entry marks its unfinished tasks lost
// (state.SetNodeStatus), so losing leadership cannot split the two.
func (m *NodeMonitor) markDown(ctx context.Context, n *types.Node, now time.Time) error {
	if _, err := m.commit.Commit(ctx, &state.SetNodeStatus{ID: n.ID, Status: types.NodeDown, Now: now}); err != nil {
		return fmt.Errorf("mark node %s down: %w", n.Name, err)
	}
	return nil
}
