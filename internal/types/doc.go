// Package types holds berth's domain types: App, Service, Task, Node and the
// small value types they are built from. Every other package speaks in these
// types; this package imports nothing of berth's and does no I/O.
//
// The split between desired and observed state matters everywhere:
//
//   - An App (with its Services) is desired state written by users. Each
//     Service carries a Version that the manager bumps only when the parts of
//     its spec that affect a running container change (not when only Replicas
//     does), so an unchanged service is never touched by another `up`.
//   - A Task is one replica. Its DesiredState is written by controllers (and
//     the scheduler's plans); its observed fields (State, Health, ExitCode,
//     Error, ContainerID) are written only from agents' reports.
//   - A Node is an agent's host. Status changes are written when they happen;
//     heartbeats themselves never reach Raft.
//
// Indexes (CreateIndex, ModifyIndex) are Raft log indexes set by the state
// store; clients use them for blocking queries.
package types
