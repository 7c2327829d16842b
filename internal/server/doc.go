// Package server is the manager: it owns the HTTP API, commits every write
// through Raft (internal/raftnode) into the state store (internal/state), and
// while it is the leader runs the controllers (internal/controller) and the
// plan applier that re-checks and commits the scheduler's placements.
//
// Use:
//
//	s, err := server.New(server.Config{DataDir: dir, HTTPAddr: "127.0.0.1:7700"})
//	...
//	err = s.Run(ctx) // serves until ctx is done, then shuts down cleanly
//
// New binds the listeners, so s.Addr() is valid before Run. Reads are served
// from the local store; writes are applied on the leader (with one manager,
// that is this one). Agents talk to the API too: they register, heartbeat
// (kept in memory, never in Raft), block on their task list and report task
// states in batches.
package server
