// Package netmesh is the agent's side of service discovery and the routing
// mesh: a DNS server that answers service names from a view of the store,
// and an L4 proxy (TCP and UDP) that relays a VIP's or a published port's
// connections to healthy replicas. Both take the whole desired state at
// once from the caller (the agent's store watch) and hold no state of the
// cluster of their own; neither touches the kernel's routes or rules.
//
// # Contract
//
//  1. NewDNS with the upstream resolvers (the node's own, from its
//     resolv.conf; never a container's), NewProxy with the timeouts.
//     Neither opens anything.
//  2. Open the DNS sockets where containers reach them (each network's
//     gateway address, port 53, UDP and TCP) and run DNS.Serve(ctx, pc, ln)
//     in a goroutine the agent owns; it returns when ctx is done.
//  3. On every store change that touches services, tasks, networks or
//     health (and on a timer, as a check against a missed event), build
//     the View and the Routes from the store and call DNS.Replace(view)
//     and Proxy.Apply(ctx, routes). Each replaces the whole previous state
//     at once: a query or a connection sees the old view or the new one,
//     never a mix. An invalid view is refused and the last good one stays.
//  4. Stopping a replica: take it out of the View and the Routes, Replace
//     and Apply, wait the drain delay, then send its stop signal. From
//     Replace on, DNS no longer answers it; from Apply on, it gets no new
//     connection, and its open ones go on until ProxyConfig.DrainTimeout.
//  5. Proxy.Close when the agent stops.
//
// Example:
//
//	d, err := netmesh.NewDNS(netmesh.DNSConfig{Upstreams: []string{"192.0.2.53:53"}})
//	go d.Serve(ctx, udpConn, tcpListener)
//	p := netmesh.NewProxy(netmesh.ProxyConfig{})
//	for range storeChanges {
//		_ = d.Replace(viewFromStore())
//		_ = p.Apply(ctx, routesFromStore())
//	}
//
// # Names the DNS server answers
//
// The asker is known by its source address (View.Members); it sees only
// the services of its own networks, in the order of its networks, its own
// app's first when two apps share a network and a name. For a service web
// of app shop:
//
//   - web, web.shop (tells two apps' web apart on a shared external
//     network), and every alias: the VIP (endpoint_mode vip, TTL
//     DNSConfig.VIPTTL) or the healthy replicas (dnsrr, TTL 1 s, shuffled,
//     at most DNSConfig.MaxAnswers). SRV on these names, or on
//     _PORT._PROTO.web for a named port, points at the VIP's or the
//     replicas' names, with their addresses in the additional section.
//   - SLOT.web, SLOT.web.shop and shop-web-SLOT (the name Compose gives the
//     container): that replica, TTL 1 s.
//   - tasks.web (as in Swarm): the replicas, even in vip mode.
//   - PTR of a VIP or a replica address on the asker's networks.
//
// Any of these names, or a name under one of them, asked by a container
// not on the service's network gets NXDOMAIN: it is neither answered nor
// forwarded. Every other name goes to the upstreams, over the protocol the
// client used (a truncated UDP answer makes it retry over TCP), within
// DNSConfig.ForwardTimeout. UDP answers are truncated to 512 bytes or the
// client's EDNS0 size.
//
// # The proxy
//
// A Route is a listening address (TCP or UDP) and its backends. A new
// connection goes to the backend with the fewest open connections, ties
// taken in turn, local backends before remote ones (only local ones with
// LocalOnly, which keeps the client's address without PROXY protocol). A
// backend that refuses is passed over for ProxyConfig.FailCooldown and the
// next one tried at once; a UDP flow whose backend refuses (ICMP port
// unreachable) moves to the next and resends the datagram. TCP is relayed
// with io.Copy between *net.TCPConn (Go splices), a clean end passed on as
// a half-close. UDP flows, one per client address, end after
// ProxyConfig.UDPIdleTimeout without traffic. With ProxyProtocol each TCP
// connection starts with a PROXY protocol v2 header, and each UDP datagram
// carries one. With Transparent (TCP) the proxy connects from the client's
// own address (IP_TRANSPARENT; seen allowed on this kernel, as is an
// iptables TPROXY rule); the backend's replies must then be routed back
// to this node by the caller's policy routing.
//
// Sizes are bounded: the View by the Max* constants, answers by
// MaxAnswers, forwards in flight by MaxForwards, TCP DNS connections by
// MaxTCPConns, proxy connections and flows per route by MaxConns and
// MaxUDPFlows.
package netmesh
