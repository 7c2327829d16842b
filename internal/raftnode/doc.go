// Package raftnode runs one server of berth's Raft cluster: hashicorp/raft
// with raft-wal as its log and stable store (DataDir/raft/wal), file
// snapshots (DataDir/raft) and a TCP transport, mutual TLS when Config.TLS
// is set. It knows nothing of what the FSM holds: it carries bytes to it
// and its answers back.
//
// The caller builds the FSM, then the Node, and applies commands on the
// leader only; WaitLeader returns once this server leads:
//
//	n, err := raftnode.New(raftnode.Config{ID: id, DataDir: dir, BindAddr: "127.0.0.1:7400", Bootstrap: true}, fsm)
//	defer n.Shutdown()
//	if err := n.WaitLeader(ctx); err != nil { ... }
//	res, err := n.Apply(ctx, cmd) // errors.Is(err, raftnode.ErrNotLeader): forward to n.Leader()
//
// # Membership
//
// Bootstrap makes a server the first voter of a new cluster; it is ignored
// when DataDir already holds Raft state, so it is safe to pass on every
// start of the first manager. Other managers start without it: they wait,
// as followers that know no leader, until the leader adds them with
// AddVoter (it sends them its state), and leave with RemoveServer. Servers
// lists the members and marks the leader. A cluster of three survives the
// loss of one; on loopback a new leader is elected within about a second.
//
// # Mutual TLS
//
// With Config.TLS every Raft connection, in and out, is mutual TLS with
// the one config: a server accepts only peers with a client certificate
// from ClientCAs, and dials only peers whose certificate RootCAs verifies
// for the name TLS.ServerName, or the host of the peer's Raft address when
// ServerName is empty (then every manager's certificate must carry its
// Raft IP). Being in the CA admits a peer to the transport; only AddVoter
// makes it a member. Without TLS the transport is plain TCP, for the
// loopback dev cluster.
//
// # Snapshots and recovery
//
// On a restart Raft restores the latest snapshot into the FSM, then, once a
// leader commits, replays the log after it: the FSM must start empty, and
// its Restore must replace its whole state.
//
// SaveSnapshot writes the FSM's state to a file of berth's own format (a
// header with the index, term and size, the state, a SHA-256). Only the
// leader restores one, with RestoreSnapshot: the file is verified whole,
// and by the FSM when it is a SnapshotVerifier, before raft installs it on
// every server. Raft panics if the FSM then fails to read it, so an FSM
// whose Restore can refuse input should implement SnapshotVerifier.
//
// When a majority of the managers is lost for good, ForceNewCluster turns
// one stopped survivor's data into a cluster of which it is the one voter;
// started with New it elects itself, keeps every entry of its log, and
// takes new members. The old members must not come back with their data.
//
// # Halting
//
// An FSM that implements Halter can stop for good, on a committed entry it
// cannot apply safely. The node then shuts Raft down (it neither votes nor
// leads, and its peers see it as down), logs why, and Halted returns the
// sentence for the operator: which entry, and to wipe the data directory
// and join the server again. The caller stops serving from its state.
//
// Apply returns the FSM's result. When the FSM's Apply returned an error
// value, Apply returns it as its error, so a rejected command reads like any
// failed call. A command cut off by a leadership change may still commit:
// commands must be safe to apply twice.
package raftnode
