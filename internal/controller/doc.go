// Package controller holds the leader's reconcile loops: they compare the
// desired state in the store (apps, services, replica counts, restart
// policies, dependencies, deletions) with the observed state of tasks and
// nodes, and commit the difference through Raft.
//
// The Reconciler is one loop that dispatches to small, pure handlers, each in
// its own file:
//
//   - services.go: keep each service at its replica count (replicated) or one
//     task per eligible node (global); replace tasks whose spec version is
//     stale; shut down tasks of removed services and extra slots.
//   - restart.go: decide whether and when a finished or unhealthy task is
//     replaced, by its restart policy (condition, delay, max_attempts, window).
//   - drain.go: replace the tasks of a drained node, stopping each old task
//     only once its replacement is placed.
//   - deps.go: hold new tasks back until their depends_on conditions hold.
//   - verdict.go: judge each service's current version (up, converging or
//     failed, and why) by the shared rules of internal/types, and record
//     the verdicts that changed (state.SetServiceStatus) for `up`, `scale`
//     and `ps` to read.
//   - teardown.go: `berth down`: shut everything down, then purge the app once
//     every node has removed its networks (and volumes).
//   - gc.go: bound task history per slot.
//   - place.go: ask the scheduler to place pending tasks and hand its plan to
//     the PlanApplier, which re-checks it against fresh state and commits it.
//
// The NodeMonitor (nodes.go) is separate because it runs on time, not on
// store changes: a node whose heartbeat is older than the TTL goes down and
// its tasks are lost, so the Reconciler replaces them elsewhere.
//
// Contract: run these only on the Raft leader, and stop them (cancel ctx)
// when leadership is lost. Handlers never write: they return state.TaskUpdates
// and other commands; the loop commits them. Time comes from a Clock.
package controller
