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
//     first needs the network (a task of it is placed there; Slice tells
//     whether it has one, without a copy of the pool), AddVIP per
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
// nothing new for as long as possible). A plan whose networks grow
// (GrowBits) takes their first blocks in bit-reversed order instead
// (0, 1/2, 1/4, 3/4 of the pool, ...), so each lies as far from the others
// as it can and has room beside it to grow.
//
// # Growth
//
// A network of the pool whose node slices are all taken doubles in place
// (AddNode does it): it becomes the prefix one bit shorter with the same
// base, if the half beside it holds no other network, down to GrowBits.
// Its base, its VIPs and every slice keep their addresses; only its
// subnet grows, so every consumer of the map sees a larger prefix that
// holds what it had. A network that is the upper half of the doubled
// prefix, or a chosen subnet, never grows. When a network can neither
// find a free slice nor grow, AddNode fails with ErrExhausted and a
// sentence naming the setting to change; the FSM makes that the pending
// reason of the tasks concerned only.
//
// # Layout
//
// With the defaults (DefaultConfig: 10.240.0.0/12, networks from /20
// growing to /13, a /24 of VIPs): up to 256 networks; in each, the first
// /24 holds the VIPs (254 services), and node slices follow. The first 127
// nodes of a network get a wide /24 slice, in its first /17 (the wide
// region); the nodes after them a small /27 past it, so a network of
// thousands of nodes fits the pool while a small cluster keeps room for
// many containers a node: 15 nodes in the first /20, 15,487 once the
// network is a /13 (half the pool: no network is ever routed as the whole
// pool, in which a machine's resolver may sit). A node whose wide slice
// went leaves it for the next node that comes. Ten thousand nodes take
// 348,448 addresses, a /13 of 524,288. With n networks each has room for
// about 1/n of the pool (a power of two): two networks can each reach
// 10,000 nodes, four 7,295 each. In a node's slice, .0 is the node's VXLAN
// device (VTEP), .1 the gateway (the node's bridge), the last address is
// the broadcast, and those between are the containers' (Slice.Take): 253
// in a /24, 29 in a /27. `berth server --address-slice 26` makes the small
// slices /26 (61 containers, 7,807 nodes); 24 makes every slice a /24
// (2,047 nodes). A cluster bootstrapped by the first version keeps its
// stored plan (V1Config: /18 networks of 63 /24 slices, slice 0 the VIPs,
// no growth, no small slices).
//
//	pool, _ := ipam.New(ipam.DefaultConfig())
//	subnet, _ := pool.AddNetwork("app_default")     // 10.240.0.0/20
//	slice, _ := pool.AddNode("app_default", "n1")   // 10.240.1.0/24
//	vip, _ := pool.AddVIP("app_default", "app/web") // 10.240.0.1
//	vtep, gw := ipam.VTEP(slice), ipam.Gateway(slice) // 10.240.1.0, 10.240.1.1
package ipam
