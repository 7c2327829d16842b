package types

import "time"

// Lifecycle is what `berth stop`, `start` and `restart` last asked of a
// service: desired state beside its spec, kept in Raft with the app, so a
// stopped service stays stopped through agent restarts, node failures and
// manager failovers. It is not hashed (stopping a service is not a new
// version), and a submission (`berth up`) drops it, as Compose's up starts
// the containers stop stopped.
type Lifecycle struct {
	// Stopped: the service runs no task until start, restart or up.
	Stopped bool `json:"stopped,omitempty"`
	// Restart: the tasks created before Index are replaced (berth restart).
	Restart bool `json:"restart,omitempty"`
	// Index is the Raft index of the command that asked: the tasks created
	// before it are the ones it stops or replaces, so a task started since
	// is never stopped by an old request.
	Index uint64 `json:"index"`
	// Remove, with Stopped, is berth run --rm's end of a one-off
	// (OneOff): once its tasks have stopped, the service and their
	// records go (state.RemoveRuns).
	Remove bool `json:"remove,omitempty"`
	// Grace, when set, is the stop grace (-t) of the tasks this stops,
	// instead of the service's stop_grace_period.
	Grace time.Duration `json:"grace,omitempty"`
	At    time.Time     `json:"at,omitzero"`
}

// Ends reports whether task t is one the service's last stop or restart
// ends: created before it asked.
func (l *Lifecycle) Ends(t *Task) bool {
	return l != nil && (l.Stopped || l.Restart) && t.CreateIndex < l.Index
}

// IsStopped reports whether the service was stopped (berth stop) and not
// started since.
func (s *Service) IsStopped() bool { return s.Lifecycle != nil && s.Lifecycle.Stopped }

// GraceOf is the -t of the stop or restart that ends task t, or 0.
func (l *Lifecycle) GraceOf(t *Task) time.Duration {
	if l.Ends(t) {
		return l.Grace
	}
	return 0
}
