// Package state holds berth's replicated state: apps, tasks and nodes in an
// in-memory indexed store (go-memdb), and the Raft FSM that is its only
// writer.
//
// # Writing
//
// Every change is a Command (UpsertApp, TaskUpdates, ...). The leader
// encodes it with Encode and hands the bytes to Raft; once committed, each
// manager's FSM decodes and applies it. Apply is deterministic: it uses only
// the command (which carries its own Now) and the log index, so all managers
// hold the same state. It returns either the command's result or an error
// value; an error means the command was rejected and the store is unchanged.
//
//	b, err := state.Encode(state.ScaleService{App: "web", Service: "api", Replicas: 3})
//	res, err := raftNode.Apply(ctx, b) // FSM result, or the rejection as err
//
// Encode frames each command with a CRC-32C, so a manager never applies
// bytes other than those the leader encoded; entries of managers from before
// checksums still decode. An entry that fails to decode halts the FSM for
// good (FSM.Halted, FSM.HaltErr): it applies nothing after it, since its
// state would silently differ from its peers'. Its owner takes the manager
// out of the cluster, and the operator wipes its data and joins it again.
//
// Every write sets CreateIndex/ModifyIndex of the objects it touches to the
// log index and records that index as the table's last-modified index. A
// command that changes nothing (an `up` of the same file) writes nothing, so
// watchers are not woken.
//
// # Reading
//
// Store.View returns a consistent snapshot. Objects it hands out are shared
// with other readers and must be treated as read-only; writes always store
// fresh copies, so a pointer read once never changes under its reader.
//
// Blocking queries pair View.Index with WaitForChange:
//
//	idx := store.View().Index(state.TableTasks)
//	for {
//		idx, err = store.WaitForChange(ctx, []string{state.TableTasks}, idx)
//		if err != nil {
//			return err // ctx done
//		}
//		tasks := store.View().Tasks(state.TaskFilter{NodeID: id})
//		...
//	}
//
// # Snapshots
//
// FSM.Snapshot captures a read transaction and streams it as JSON records;
// FSM.Restore builds a new database from such a stream and swaps it in
// atomically, waking every waiter so it re-checks its index.
package state
