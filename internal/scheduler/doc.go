// Package scheduler decides where tasks run. It is pure: no I/O, no
// goroutines, no clock. It takes a snapshot and returns a plan; committing
// the plan is the caller's job.
//
// # Contract
//
// A scheduling pass is:
//
//  1. Have a view: NewCluster from the store (every node, the tasks that may
//     hold resources, which the Cluster filters itself, and the services by
//     types.ServiceID(app, name)), or a Cluster kept from an earlier pass and
//     told of every change since: SetNode, RemoveNode, SetService,
//     RemoveService, SetTask (a task that no longer holds resources is
//     dropped), RemoveTask. A kept view counts what a fresh one would
//     (Cluster.Usage says what it counts).
//  2. Call Place with the pending tasks, most important first. Requests are
//     decided in order and each placement is accounted before the next, so
//     a plan never over-commits a node or binds a host port twice.
//  3. Propose the Plan: Placements become assigned tasks, Failures become
//     PendingReason. A kept view then forgets the placements (RemoveTask):
//     those committed come back from the store with SetTask.
//
// The plan applier, holding newer state than the pass did, calls Assign on
// its view for each proposed placement: Assign re-checks the task on that
// node and accounts it, or says why not (ErrInfeasible, ErrNodeNotFound), so
// concurrent plans cannot over-commit a node.
//
// Global-mode controllers call EligibleNodes for the nodes that should run
// one task each, then Place those tasks with Task.NodeID set.
//
// # Feasibility
//
// A node can take a task when, in this order: it is ready; it is active (not
// drained); it offers the service's driver ("docker" when none is named);
// it matches every placement constraint (node.id, node.hostname, node.role,
// node.labels.KEY with == or !=); the task's CPU and memory reservations fit
// in its capacity minus what is reserved (a zero capacity means unlimited);
// no published host port clashes (same port and protocol, unless both bind
// different specific addresses); and it runs fewer than
// max_replicas_per_node tasks of the service. A task that fits nowhere
// fails with the count of nodes each filter rejected, most frequent first:
//
//	0/5 nodes available: 3 constraint node.labels.zone==b, 2 insufficient memory
//
// # Scoring
//
// Among feasible nodes the scheduler picks, in order of precedence: the
// spread group (placement preferences, outermost first) with the fewest tasks
// of the service; the node with the fewest tasks of the service; the node
// with the fewest tasks; the node with the least memory reserved; the lowest
// node ID. The same inputs always give the same plan. Tasks being replaced
// (desired shutdown, or on a drained node) keep their resources and ports
// until they stop but are not counted as the service's tasks, so a
// replacement spreads over where the service will run.
//
// A Cluster keeps, per service spec and across Place calls, heaps of
// candidate nodes keyed by stamped scores that it repairs lazily (see
// candidates), so a placement costs O(log n) rather than a scan of every
// node, and one task placed alone costs as little. On a cluster of more than
// 1,000 nodes the heaps hold a sample of the eligible nodes, widened whenever
// the sample fills with the service's tasks faster than the cluster does, or
// holds no feasible node; a task fails only once every node was looked at.
// Spread over nodes and zones is as even as with every node scored; the
// tie-break on fewest tasks overall only sees the sample.
//
// # Example
//
//	c := scheduler.NewCluster(nodes, runningTasks, services)
//	plan := c.Place([]scheduler.Request{{Task: t, Service: svc}})
//	for _, p := range plan.Placements { /* mark p.TaskID assigned to p.NodeID */ }
//	for _, f := range plan.Failures { /* set f.TaskID's PendingReason to f.Reason */ }
package scheduler
