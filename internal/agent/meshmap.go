package agent

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/netmesh"
	"github.com/berth-dev/berth/internal/types"
)

// meshView is what the node's DNS answers from the network map: every
// network with its services (VIP or dnsrr, aliases, serving replicas), the
// serving replicas as askers on all of their networks, and every network's
// subnet for askers the map does not list yet (starting, not yet healthy).
// An entry the DNS server would refuse (a name that is no DNS label, an
// address that does not parse) is left out and reported, so one bad service
// cannot take every name of the cluster out of DNS.
func meshView(m *api.NetworkMap) (netmesh.View, []error) {
	var v netmesh.View
	var bad []error
	byNet := map[string]int{} // network key -> index in v.Networks
	for _, n := range m.Networks {
		if n.Key == "" || byNet[n.Key] > 0 || len(v.Networks) >= netmesh.MaxNetworks {
			continue
		}
		v.Networks = append(v.Networks, netmesh.Network{Name: n.Key})
		byNet[n.Key] = len(v.Networks)
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			v.Subnets = append(v.Subnets, netmesh.Subnet{Prefix: p.Masked(), Network: n.Key, App: n.App})
		} else {
			bad = append(bad, fmt.Errorf("network %s: subnet %q: %w", n.Key, n.Subnet, err))
		}
	}
	members := map[netip.Addr]int{} // address -> index in v.Members
	for i := range m.Services {
		s := &m.Services[i]
		if !netmesh.ValidLabel(s.Name) || s.App != "" && !netmesh.ValidLabel(s.App) {
			bad = append(bad, fmt.Errorf("service %s/%s: not a DNS name; it is not answered", s.App, s.Name))
			continue
		}
		for _, att := range s.Networks {
			ni := byNet[att.Network]
			if ni == 0 {
				continue // a network the map does not have (yet)
			}
			svc, errs := viewService(s, att)
			bad = append(bad, errs...)
			net := &v.Networks[ni-1]
			if len(net.Services) < netmesh.MaxServicesPerNet {
				net.Services = append(net.Services, svc)
			}
		}
		for _, e := range s.Endpoints {
			addMember(&v, members, s, e)
		}
	}
	return v, bad
}

// viewService is service s on the network of att.
func viewService(s *api.MapService, att api.MapAttachment) (netmesh.Service, []error) {
	var bad []error
	out := netmesh.Service{Name: s.Name, App: s.App, Mode: netmesh.ModeVIP}
	vip, err := netip.ParseAddr(att.VIP)
	switch {
	case s.EndpointMode == types.EndpointDNSRR:
		out.Mode = netmesh.ModeDNSRR
	case err != nil:
		// No VIP yet (or a bad one): the replicas' own addresses answer
		// until it comes, rather than nothing.
		out.Mode = netmesh.ModeDNSRR
		if att.VIP != "" {
			bad = append(bad, fmt.Errorf("service %s/%s on %s: vip %q: %w", s.App, s.Name, att.Network, att.VIP, err))
		}
	default:
		out.VIP = vip
	}
	for _, a := range att.Aliases {
		if !netmesh.ValidName(a) || len(out.Aliases) >= netmesh.MaxAliases {
			bad = append(bad, fmt.Errorf("service %s/%s on %s: alias %q is not a DNS name or one too many; it is not answered", s.App, s.Name, att.Network, a))
			continue
		}
		out.Aliases = append(out.Aliases, a)
	}
	for _, e := range s.Endpoints {
		addr, err := netip.ParseAddr(e.Addresses[att.Network])
		if err != nil || e.Slot < 0 || len(out.Replicas) >= netmesh.MaxReplicas {
			continue // not on this network (yet)
		}
		out.Replicas = append(out.Replicas, netmesh.Replica{Slot: e.Slot, Addr: addr})
	}
	return out, bad
}

// addMember records a serving replica's addresses as askers on every
// network it has an address on, its service's first network first.
func addMember(v *netmesh.View, members map[netip.Addr]int, s *api.MapService, e api.MapEndpoint) {
	var nets []string
	for _, att := range s.Networks {
		if e.Addresses[att.Network] != "" {
			nets = append(nets, att.Network)
		}
	}
	if len(nets) > netmesh.MaxNetworksPerAddr {
		nets = nets[:netmesh.MaxNetworksPerAddr]
	}
	for _, key := range nets {
		addr, err := netip.ParseAddr(e.Addresses[key])
		if err != nil || members[addr] > 0 || len(v.Members) >= netmesh.MaxMembers {
			continue
		}
		v.Members = append(v.Members, netmesh.Member{Addr: addr, App: s.App, Networks: nets})
		members[addr] = len(v.Members)
	}
}

// meshRoutes are the routing mesh's routes on node self: every published
// ingress port of every service, on all of the node's addresses, to the
// service's serving replicas wherever they run (those on self marked
// local). Host-mode ports are Docker's, on the task's node only. Two
// services on one port and protocol (the manager refuses it) keep the
// first; the other is reported.
// listenAddr is where a published port listens: its host_ip, or every
// address.
func listenAddr(hostIP string) netip.Addr {
	if a, err := netip.ParseAddr(hostIP); err == nil {
		return a.Unmap()
	}
	return netip.IPv4Unspecified()
}

func meshRoutes(m *api.NetworkMap, self string) ([]netmesh.Route, []error) {
	var routes []netmesh.Route
	var bad []error
	taken := map[string]string{}
	for i := range m.Services {
		s := &m.Services[i]
		for _, p := range s.Ports {
			if p.Published == 0 || p.Mode != types.PortIngress || (p.Protocol != "tcp" && p.Protocol != "udp") {
				continue
			}
			r := netmesh.Route{
				Proto:         p.Protocol,
				Listen:        netip.AddrPortFrom(listenAddr(p.HostIP), p.Published),
				LocalOnly:     s.Mesh == types.MeshLocal,
				ProxyProtocol: s.ProxyProtocol == types.ProxyV2,
				Backends:      backends(s, self, p.Target),
			}
			key := r.Proto + " " + r.Listen.String()
			owner := types.ServiceID(s.App, s.Name)
			if prev, dup := taken[key]; dup {
				bad = append(bad, fmt.Errorf("service %s publishes %s, already published by %s; not routed", owner, key, prev))
				continue
			}
			taken[key] = owner
			routes = append(routes, r)
		}
	}
	slices.SortFunc(routes, func(a, b netmesh.Route) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Listen.Port(), b.Listen.Port()))
	})
	return routes, bad
}

// backends are the serving replicas of s at port, each by its address on
// the first of the service's networks it has one on.
func backends(s *api.MapService, self string, port uint16) []netmesh.Backend {
	var out []netmesh.Backend
	for _, e := range s.Endpoints {
		for _, att := range s.Networks {
			addr, err := netip.ParseAddr(e.Addresses[att.Network])
			if err != nil {
				continue
			}
			out = append(out, netmesh.Backend{Addr: netip.AddrPortFrom(addr, port), Local: e.NodeID == self})
			break
		}
	}
	return out
}

// nodeGateways are this node's gateway addresses, one per network it has
// a slice of: where its containers' resolver, the agent's DNS, listens.
func nodeGateways(m *api.NetworkMap, self string) ([]netip.Addr, []error) {
	var out []netip.Addr
	var bad []error
	for _, n := range m.Networks {
		s, ok := n.Slices[self]
		if !ok {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			bad = append(bad, fmt.Errorf("network %s: this node's slice %q is no IPv4 prefix", n.Key, s))
			continue
		}
		out = append(out, ipam.Gateway(p))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), bad
}
