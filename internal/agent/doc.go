// Package agent is the node agent: it joins a manager, runs the tasks the
// manager places on its node through drivers, and reports what became of
// them. It talks to the manager only through api.Client.
//
// Build an Agent from a Config and call Run; Run blocks until its context
// ends. Stopping the agent does not stop its tasks: the next agent started
// on the same DataDir is the same node (same ID) and adopts them.
//
//	a, err := agent.New(agent.Config{ManagerAddr: "http://127.0.0.1:7700", DataDir: dir})
//	if err != nil { ... }
//	err = a.Run(ctx) // until ctx is done
//
// What Run does, in order:
//
//  1. Opens its local state (DataDir/agent.db, bbolt: the node ID and, per
//     task, its driver and stop settings) and serves the agent API on
//     ListenAddr: GET /v1/agent/tasks/{id}/logs streams a task's output,
//     which the manager proxies for `berth logs`.
//  2. Registers the node (ID, name, API address, capacity, drivers),
//     retrying until the manager answers, then heartbeats every TTL/3; a
//     404 from the manager means it forgot the node, and the agent
//     registers again and reports every task's state anew.
//  3. Lists every driver's tasks before it acts, so tasks that a previous
//     agent started are adopted rather than started again.
//  4. Follows the node's tasks with blocking queries and reconciles on
//     every answer, driver event and periodic listing (below).
//  5. Reports state changes in batches: a change waits a few tens of
//     milliseconds for others, a batch the manager did not take is sent
//     again, and only a task's latest state is sent.
//
// Reconciling moves each task one step towards what the manager wants:
//
//   - A task wanted running that no driver holds is started, at most
//     Config.Parallel at once, and reported starting, then running (or
//     rejected with the driver's error). A task is never started twice:
//     its start is recorded before the driver is called, and a started task
//     that later vanishes from its driver is reported failed.
//   - An exited task is reported complete (exit 0) or failed ("exit code
//     137: ..."). Health is reported; restarts are the manager's call.
//   - A task wanted shut down is stopped with the grace period and signal
//     its service had when it started, and reported shutdown.
//   - A task the manager no longer lists is stopped and removed.
//   - Once an app being deleted has no task left here, its networks (and
//     volumes, if asked) are removed and the teardown is reported, once.
//
// One goroutine (the loop) owns all task state; driver calls run on worker
// goroutines and hand their outcome back to it, so a slow start never
// blocks the loop. Secret and config data are never logged.
package agent
