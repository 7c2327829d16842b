// Package raftnode runs one server of berth's Raft cluster: hashicorp/raft
// with raft-wal as its log and stable store (DataDir/raft/wal), file
// snapshots (DataDir/raft) and a TCP transport. It knows nothing of what
// the FSM holds: it carries bytes to it and its answers back.
//
// The caller builds the FSM, then the Node, and applies commands on the
// leader only; WaitLeader returns once this server leads:
//
//	n, err := raftnode.New(raftnode.Config{ID: id, DataDir: dir, BindAddr: "127.0.0.1:7400", Bootstrap: true}, fsm)
//	defer n.Shutdown()
//	if err := n.WaitLeader(ctx); err != nil { ... }
//	res, err := n.Apply(ctx, cmd) // errors.Is(err, raftnode.ErrNotLeader): forward to n.Leader()
//
// Bootstrap makes a server the first voter of a new cluster; it is ignored
// when DataDir already holds Raft state, so it is safe to pass on every
// start of the first manager. Other managers start without it and are added
// by the leader with AddVoter.
//
// On a restart Raft restores the latest snapshot into the FSM, then, once a
// leader commits, replays the log after it: the FSM must start empty, and
// its Restore must replace its whole state.
//
// Apply returns the FSM's result. When the FSM's Apply returned an error
// value, Apply returns it as its error, so a rejected command reads like any
// failed call. A command cut off by a leadership change may still commit:
// commands must be safe to apply twice.
package raftnode
