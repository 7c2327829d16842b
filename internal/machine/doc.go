// Package machine provisions the hosts a berth cluster runs on, as Docker
// Machine did: a Driver makes a host (an address of its own, for agents a
// Docker engine of its own, and a supervised berth agent or manager on it),
// starts and stops it, runs commands in it and tears it down.
//
// The contract, for a driver and for its caller (the CLI's `berth machine`
// and `berth cluster` commands):
//
//  1. The caller builds a Spec: a name unique in its cluster, the role, the
//     labels, how berth on the host joins (Join: empty for the first manager,
//     which bootstraps), and the driver's own options (Spec.Options, checked
//     by the driver's Check before anything is made, so bad input is one
//     clear error and leaves nothing behind).
//  2. Create makes the host and returns a Host once berth on it answers
//     (a manager's API, an agent registered). It reports each step to
//     Progress. If a step fails, Create undoes what it made before it
//     returns the error, which names the step.
//  3. Host.Local is the driver's own record of what it made (namespace,
//     links, directories, pids): the caller keeps it on the machine that
//     made the host (see Store), so Remove works with no cluster left.
//     The cluster keeps the rest of Host (name, role, addresses, labels)
//     in Raft, for every manager and client to see.
//  4. Start, Stop, Remove and Exec take that Host back. Remove with force
//     removes whatever is left of a host, even half made, and never fails
//     on a part that is already gone.
//
// Drivers here: local (network-namespace hosts on one Linux machine,
// package machine/local) and ssh (an existing Linux host over SSH, package
// machine/ssh). A cloud driver implements the same interface; none is faked.
package machine
