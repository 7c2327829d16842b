package harness

import (
	"testing"
	"time"
)

// KillLeader kills -9 the leader all live managers agree on, and waits up to
// timeout until another manager says it leads. It returns the killed one,
// the new leader and how long the election took from the kill.
func (c *Cluster) KillLeader(tb testing.TB, timeout time.Duration) (old, next *Manager, took time.Duration) {
	tb.Helper()
	old = c.Leader(tb, timeout)
	old.Kill(tb)
	next, took = c.WaitNewLeader(tb, old, timeout)
	return old, next, took
}

// Restart starts a stopped manager again on its own data directory and
// addresses, and waits until its API answers (it catches up with the
// leader by itself; see CheckManagers).
func (c *Cluster) Restart(tb testing.TB, m *Manager) {
	tb.Helper()
	m.Start(tb)
	WaitFor(tb, managerStartTimeout, m.Name+" answers after its restart", m.expectAnswers)
}
