// Package ipam allocates the overlay's addresses: a subnet per cluster
// network out of the cluster's address pool, a slice of that subnet per
// node, a virtual address (VIP) per service on the network, and addresses
// inside a slice. It is pure: no I/O, no clock, no randomness, no map
// iteration that reaches a result, so the Raft FSM can call it and every
// manager that applies the same log gets the same answer.
//
// # Contract
//
//  1. Build a Config (DefaultConfig, or the cluster's setting) and check it
//     with Validate; New does. The pool must not overlap the machine's
//     routes, resolvers or Docker's pools: CheckPool tells, given what the
//     caller found in use (Reserved lists the fixed ones).
//  2. Keep one *Pool in the store. The store's objects are immutable once
//     inserted, so in the FSM: Clone, mutate, insert the clone. A Pool
//     marshals to JSON and back (snapshots) without losing anything.
//  3. AddNetwork when a cluster network is created, AddNode when a node
//     first needs the network (a task of it is placed there), AddVIP per
//     service on it. Each is idempotent per owner: asking again returns the
//     owner's allocation, so a replayed or repeated command cannot hand
//     one owner two blocks, and no block ever has two owners.
//  4. Release with RemoveVIP, RemoveNode (or RemoveNodeEverywhere when a
//     node is removed from the cluster) and RemoveNetwork. Release only
//     what no running container still uses: a node's slice goes when the
//     node leaves, not when it is down.
//
// Free blocks are taken next-fit, searching on from the last allocation
// and wrapping, so an address just released is the last to be handed out
// again (a DNS cache or a conntrack entry that still names it meets
// nothing new for as long as possible).
//
// # Layout
//
// With the defaults (10.240.0.0/12, /18 networks, /24 slices): 64
// networks; in each, slice 0 holds the VIPs (254 services) and slices
// 1..63 go to nodes; in a node's slice, .0 is the node's VXLAN device
// (VTEP), .1 the gateway (the node's bridge), the last address is the
// broadcast, and the 253 between are the containers' (Slice.Take).
//
//	pool, _ := ipam.New(ipam.DefaultConfig())
//	subnet, _ := pool.AddNetwork("app_default")     // 10.240.0.0/18
//	slice, _ := pool.AddNode("app_default", "n1")   // 10.240.1.0/24
//	vip, _ := pool.AddVIP("app_default", "app/web") // 10.240.0.1
//	vtep, gw := ipam.VTEP(slice), ipam.Gateway(slice) // 10.240.1.0, 10.240.1.1
package ipam
