package netmesh

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxNames bounds the names one view may define in all (services, aliases,
// replicas, ports, on every network), so the index stays bounded even when
// every per-list limit is met at once.
const MaxNames = 1 << 20

// target is what one name stands for on one network: a service (slot < 0),
// one replica of it, or one of its SRV ports.
type target struct {
	svc   *Service
	slot  int   // >= 0: the replica in this slot
	tasks bool  // tasks.NAME: the replicas even in vip mode
	port  *Port // _NAME._PROTO.SERVICE
}

// index is a View compiled for lookups. It is never changed once built; the
// DNS server swaps whole indexes.
type index struct {
	nets    map[string]map[string][]target // network -> fqdn -> targets
	members map[netip.Addr]*Member
	subnets []Member // one per View.Subnets entry, Addr unset
	prefix  []netip.Prefix
	known   map[string]bool // every fqdn on any network: NXDOMAIN, not forward
	// reverse maps an address to its name per network, for PTR.
	reverse map[string]map[netip.Addr]string
}

func buildIndex(v *View) (*index, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	ix := &index{
		nets:    make(map[string]map[string][]target, len(v.Networks)),
		members: make(map[netip.Addr]*Member, len(v.Members)),
		known:   make(map[string]bool),
		reverse: make(map[string]map[netip.Addr]string, len(v.Networks)),
	}
	count := 0
	for ni := range v.Networks {
		n := &v.Networks[ni]
		names := ix.nets[n.Name]
		if names == nil {
			names = make(map[string][]target)
			ix.nets[n.Name] = names
			ix.reverse[n.Name] = make(map[netip.Addr]string)
		}
		for si := range n.Services {
			s := &n.Services[si]
			for name, t := range serviceNames(s) {
				names[name] = append(names[name], t)
				ix.known[name] = true
				count++
			}
			ix.addReverse(n.Name, s)
		}
		if count > MaxNames {
			return nil, fmt.Errorf("view.networks[%d]: more than %d names in all", ni, MaxNames)
		}
	}
	for i := range v.Members {
		m := &v.Members[i]
		ix.members[m.Addr.Unmap()] = m
	}
	for _, sn := range v.Subnets {
		ix.subnets = append(ix.subnets, Member{App: sn.App, Networks: []string{sn.Network}})
		ix.prefix = append(ix.prefix, sn.Prefix.Masked())
	}
	return ix, nil
}

// serviceNames lists every name a service answers to on its network.
// Compose users reach a service by its name and its aliases; SERVICE.APP
// tells apart two apps' services of one name on a shared network;
// APP-SERVICE-SLOT is the name Compose gives a container, SLOT.SERVICE the
// one berth gives a replica, tasks.SERVICE the replicas as Swarm names them.
func serviceNames(s *Service) map[string]target {
	out := make(map[string]target)
	bases := []string{s.Name}
	if s.App != "" {
		bases = append(bases, s.Name+"."+s.App)
	}
	for _, b := range bases {
		out[fqdn(b)] = target{svc: s, slot: -1}
		out[fqdn("tasks."+b)] = target{svc: s, slot: -1, tasks: true}
		for pi := range s.Ports {
			p := &s.Ports[pi]
			out[fqdn("_"+p.Name+"._"+p.Protocol+"."+b)] = target{svc: s, slot: -1, port: p}
		}
		for _, r := range s.Replicas {
			out[fqdn(strconv.Itoa(r.Slot)+"."+b)] = target{svc: s, slot: r.Slot}
		}
	}
	if s.App != "" {
		for _, r := range s.Replicas {
			out[fqdn(s.App+"-"+s.Name+"-"+strconv.Itoa(r.Slot))] = target{svc: s, slot: r.Slot}
		}
	}
	for _, a := range s.Aliases {
		out[fqdn(a)] = target{svc: s, slot: -1}
	}
	return out
}

func (ix *index) addReverse(network string, s *Service) {
	rev := ix.reverse[network]
	if s.Mode == ModeVIP {
		rev[s.VIP.Unmap()] = fqdn(s.Name)
	}
	for _, r := range s.Replicas {
		rev[r.Addr.Unmap()] = fqdn(strconv.Itoa(r.Slot) + "." + s.Name)
	}
}

// lookup finds what name stands for to the asker: on the asker's networks
// in their order, the asker's own app's services first. found is false when
// no network of the asker knows the name.
func (ix *index) lookup(asker netip.Addr, name string) (ts []target, found bool) {
	m := ix.member(asker)
	if m == nil {
		return nil, false
	}
	for _, n := range m.Networks {
		all := ix.nets[n][name]
		if len(all) == 0 {
			continue
		}
		var own []target
		for _, t := range all {
			if t.svc.App == m.App {
				own = append(own, t)
			}
		}
		if len(own) > 0 {
			return own, true
		}
		return all, true
	}
	return nil, false
}

// reverseLookup finds the name of addr on one of the asker's networks.
func (ix *index) reverseLookup(asker, addr netip.Addr) (string, bool) {
	m := ix.member(asker)
	if m == nil {
		return "", false
	}
	for _, n := range m.Networks {
		if name, ok := ix.reverse[n][addr.Unmap()]; ok {
			return name, true
		}
	}
	return "", false
}

// member is the asker as a member, by its address, else by the subnet it
// is in; nil if neither knows it.
func (ix *index) member(asker netip.Addr) *Member {
	asker = asker.Unmap()
	if m := ix.members[asker]; m != nil {
		return m
	}
	for i, p := range ix.prefix {
		if p.Contains(asker) {
			return &ix.subnets[i]
		}
	}
	return nil
}

func fqdn(s string) string { return strings.ToLower(s) + "." }
