// Package agent is the node agent: it joins a cluster, runs the tasks the
// manager places on its node through drivers, and reports what became of
// them. It talks to managers only through api.Client, over mutual TLS.
//
// Build an Agent from a Config and call Run; Run blocks until its context
// ends. Stopping the agent does not stop its tasks: the next agent started
// on the same DataDir is the same node (same ID) and adopts them.
//
//	a, err := agent.New(agent.Config{ManagerAddr: "10.0.0.1:7702", JoinToken: tok, DataDir: dir})
//	if err != nil { ... }
//	err = a.Run(ctx) // until ctx is done
//
// Identity. ManagerAddr is a manager's cluster port (host:port, TLS only).
// On first start the node has no certificate, and JoinToken, a worker
// token, is required. Run dials the manager trusting nothing but the CA
// whose fingerprint the token carries (pki.PinnedTLS), and posts the token
// with a CSR whose CN is the node's ID (random, or the one its local state
// kept); the manager answers a certificate for the node ID it chose, which
// the node adopts. DataDir/pki then holds ca.crt, node.crt and node.key, and
// later starts need no token. Refusals (4xx, such as a wrong or rotated
// token), a manager of another cluster and a port that does not speak TLS
// end Run with an error saying so; network failures and a busy manager are
// retried with backoff. Every later call presents the node certificate and
// accepts only a certificate the cluster CA issued to a manager
// (pki.RoleManager.ServerName()).
//
// What Run does, in order:
//
//  1. Opens its local state (DataDir/agent.db, bbolt: the node ID and, per
//     task, its driver and stop settings), joins if it must, sets up its
//     drivers and serves the agent API on ListenAddr over mutual TLS, to
//     managers only (a worker certificate gets 403):
//     GET /v1/agent/tasks/{id}/logs streams a task's output, which the
//     manager proxies for `berth logs`. When the node may run docker
//     tasks and RegistryAddr is set (`--registry-port`, 7703 by default),
//     it also serves the pull-through endpoint of the cluster registry on
//     the host's loopback, in plain HTTP as the engine pulls from a
//     loopback registry: GET and HEAD under /v2/ go to the managers' cluster
//     addresses (learned from heartbeats, kept in DataDir) with the node
//     certificate, to managers of the cluster only, streamed, passing over
//     a manager that cannot be dialled or answers 404 or 5xx. The docker
//     driver pulls a service's ClusterImage through it.
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
//  6. With Config.Overlay (`berth agent --overlay`, on by default), follows
//     the cluster's network map (GET /v1/netmap, blocking queries) and
//     hands the latest one, on every change and every 30 s, to its
//     subscribers (onNetMap), from one goroutine, in order: first the
//     node's overlay (package overlay: VXLAN to the peers' slices, VIP
//     balancing), whose failure is logged and retried and never stops a
//     task; then DNS and the mesh. A docker task starts once NodeTasks
//     has this node's slice of each of its networks (and the map has
//     given the overlay's MTU); its networks are made on the slices. A
//     manager that serves no map (404) leaves the networks local. Without
//     Overlay (agents sharing one engine and network namespace, as
//     test/cluster's) networks are the engine's local ones.
//
// Reconciling moves each task one step towards what the manager wants:
//
//   - A task wanted running that no driver holds is started, at most
//     Config.Parallel at once, and reported starting (with the driver's
//     progress while it waits, such as an image pull's), then running (or
//     rejected with the driver's error). A task is never started twice:
//     its start is recorded before the driver is called, and a started task
//     that later vanishes from its driver is reported failed.
//   - An exited task is reported complete (exit 0) or failed ("exit code
//     137: ..."). Health is reported; restarts are the manager's call.
//   - A task wanted shut down is stopped with the grace period and signal
//     its service had when it started, and reported shutdown. With the
//     overlay, a replica that served first waits its service's drain delay
//     (drain.go): the manager took it out of the network map at once, so
//     every node's DNS and mesh stop sending to it before it gets its
//     signal.
//   - A task the manager no longer lists is stopped and removed.
//   - Once an app being deleted has no task left here, its networks (and
//     volumes, if asked) are removed and the teardown is reported, once.
//
// With Config.Overlay the agent also serves its node's part of the cluster
// network from the network map (netmap.go): the overlay (overlay.go), and
// the mesh (mesh.go): a DNS server on each of the node's network gateways,
// port 53, the containers' first resolver, and the L4 proxy that answers
// every published ingress port on every node. A task whose ingress port a
// process holds on the node is rejected, naming the holder.
//
// One goroutine (the loop) owns all task state; driver calls run on worker
// goroutines and hand their outcome back to it, so a slow start never
// blocks the loop. Secret and config data are never logged.
package agent
