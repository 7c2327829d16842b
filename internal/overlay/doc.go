// Package overlay is the agent's side of the cluster overlay: one VXLAN
// device in the node's network namespace that carries every cluster
// network's traffic to the other nodes' slices, as flannel's vxlan backend
// does. The manager allocates the addresses (package ipam); this package
// makes the kernel match them.
//
// # Contract
//
//  1. New with the node's Config: its underlay address (the address other
//     nodes reach it at; the device whose address it is carries the
//     VXLAN packets) and, in tests, the namespace to work in. New touches
//     nothing.
//  2. Apply the Desired state whenever the store changes (the agent's
//     watch of the network map, api.NetworkMap) and on a timer:
//     the networks with this node's slice in each, and every peer with its
//     underlay address and slices (DesiredFrom derives it from the
//     manager's ipam.Pool and the nodes' addresses). Apply converges: it adds what is missing
//     and removes what is stale, so it may be called with the same state
//     any number of times, and after a restart of the agent it takes over
//     the device and entries the last run left, without recreating them.
//  3. Remove when the node leaves the cluster: the device, its entries and
//     the rules go.
//
// An Overlay is owned by one goroutine; it is not safe for concurrent use.
//
// # What Apply makes
//
//   - The device (Config.Device, default "berth-vx"): VXLAN with the
//     cluster's VNI on UDP 4789, its source and carrier the underlay
//     address and device, no learning (every entry is static, from the
//     store), MTU the underlay's less 50 (the VXLAN, UDP, IP and Ethernet
//     headers), MAC MACFor(underlay) so every node can compute every
//     other's without asking, alias "berth overlay" as the mark that it is
//     berth's: a device of that name without the mark is never touched.
//     Containers' MTU must not exceed the device's: use MTU().
//   - On it, for each network: the address ipam.VTEP(slice)/32 (the
//     slice's .0). For each peer slice: a route to the slice via the
//     peer's VTEP, onlink; a permanent neighbour entry from that VTEP to
//     the peer's MAC; and one forwarding (FDB) entry per peer from its MAC
//     to its underlay address.
//   - Rules, each tagged with the comment "berth overlay" in chains of
//     berth's own (BERTH-OVERLAY in filter, BERTH-OVERLAY-NAT in nat), each
//     jumped to first from FORWARD and POSTROUTING: traffic between two
//     addresses of one network's subnet is accepted (Docker sets FORWARD
//     to DROP) and never masqueraded (Docker masquerades what leaves its
//     bridges); any other traffic into or out of the device is dropped, so
//     networks are isolated from each other across nodes too. And in
//     BERTH-OVERLAY-IN, jumped to first from INPUT: VXLAN packets are
//     accepted from the peers' underlay addresses only (VXLAN has no
//     authentication; anyone else could put frames on the overlay).
//     And in BERTH-OVERLAY-RAW (raw, jumped to first from PREROUTING and
//     OUTPUT): the VXLAN packets to and from the underlay address are not
//     tracked (CT --notrack): nothing matches their state, and tracked
//     they took a conntrack entry per inner flow on both nodes. The frames
//     inside are tracked as before (the device resets a packet's conntrack
//     state as it encapsulates and as it decapsulates).
//   - net.ipv4.ip_forward set to 1.
//   - The device only while a peer has a slice: a node alone (or whose
//     networks no other node has) has none, and one left is deleted.
//
// # VIPs (Desired.VIPs)
//
// A service's virtual address on a network is balanced by the kernel, as
// kube-proxy's iptables mode does it (this kernel has no IPVS): in
// BERTH-VIP (nat, jumped to first from PREROUTING, matching sources of the
// VIP's network only, so networks stay isolated) and BERTH-VIP-OUT (nat
// OUTPUT: the node's own processes), a new connection to VIP:port, for
// each port the service lists (the whole address, every port and
// protocol, when it lists none), is DNATed to the same port of one
// serving replica, picked uniformly with `statistic --mode random`
// (probability 1/n, then 1/(n-1), ..., the last for sure). Conntrack keeps
// a connection on its replica. The chains are rewritten whole when the
// replicas change: a replica left out gets no new connection while its
// open ones go on; UDP flows to a VIP whose replicas changed are deleted
// from conntrack, so a client that keeps sending moves to a serving
// replica. BERTH-VIP-REJECT (filter, jumped to from BERTH-OVERLAY and from
// OUTPUT) rejects what is still addressed to a VIP, not DNATed (no
// replica, or a port not listed): the client is refused at once. Each VIP
// is routed to loopback from its network's gateway address (the pool
// itself is routed unreachable): the node's own connections are routed
// before nat OUTPUT sees them, and a route out of the bridge would make
// the node send containers ICMP redirects instead of the refusal.
//
// Hairpin: a client DNATed to a replica on its own bridge gets the replies
// over the bridge, un-NATed by br_netfilter (Docker turns it on; without
// it the slice's DNATed connections are masqueraded). A replica DNATed to
// itself is masqueraded to the gateway and its bridge port put in hairpin
// mode, so the only client address lost is a replica's own. The node's
// own processes (a VIP's DNAT in OUTPUT, the mesh's proxy) reach containers
// on other nodes from the node's VTEP address on that network (SNAT on the
// device, per network): the source the kernel would pick, the underlay's
// or another network's VTEP, is dropped by the peer's isolation.
//
// The containers' side is the caller's: a bridge per network whose address
// is ipam.Gateway(slice) in the slice (a Docker network with the slice as
// subnet and that gateway, and MTU()), containers addressed in it.
package overlay
