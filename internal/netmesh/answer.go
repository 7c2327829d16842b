package netmesh

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// answerLimits are the DNS server's knobs that shape an answer.
type answerLimits struct {
	vipTTL     uint32
	replicaTTL uint32 // at most 1: replicas come and go
	maxAnswers int
}

// answer is the pure core of the DNS server: what to reply to req from
// asker given the index. forward is true when the name is not berth's and
// the question goes to the upstreams unchanged.
func (ix *index) answer(req *dns.Msg, asker netip.Addr, lim answerLimits) (resp *dns.Msg, forward bool) {
	resp = new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	if req.Opcode != dns.OpcodeQuery {
		resp.Rcode = dns.RcodeNotImplemented
		return resp, false
	}
	if len(req.Question) != 1 {
		resp.Rcode = dns.RcodeFormatError
		return resp, false
	}
	q := req.Question[0]
	if q.Qclass != dns.ClassINET {
		return nil, true
	}
	name := strings.ToLower(q.Name)
	if q.Qtype == dns.TypePTR {
		return ix.answerPTR(resp, asker, name, lim)
	}
	ts, found := ix.lookup(asker, name)
	if !found {
		if ix.ours(name) {
			// A service of berth's on a network the asker is not on, or a
			// name under one (a slot scaled away): the asker must not
			// learn the service exists, and the name must not leak upstream.
			resp.Authoritative = true
			resp.Rcode = dns.RcodeNameError
			return resp, false
		}
		return nil, true
	}
	resp.Authoritative = true
	for _, t := range ts {
		resp.Answer = append(resp.Answer, t.records(q, lim)...)
		if q.Qtype == dns.TypeSRV {
			resp.Extra = append(resp.Extra, t.srvGlue(lim)...)
		}
	}
	if len(resp.Answer) > lim.maxAnswers {
		resp.Answer = resp.Answer[:lim.maxAnswers]
	}
	if len(resp.Extra) > lim.maxAnswers {
		resp.Extra = resp.Extra[:lim.maxAnswers]
	}
	return resp, false
}

// ours reports whether name is one of berth's names, or of their shape
// under one (SLOT.SERVICE of a slot scaled away, tasks.SERVICE,
// _PORT._PROTO.SERVICE). Only those shapes: a service named like a
// top-level domain ("app", "dev") must not swallow example.app.
func (ix *index) ours(name string) bool {
	if ix.known[name] {
		return true
	}
	first, rest, ok := strings.Cut(name, ".")
	if !ok || rest == "" {
		return false
	}
	if _, err := strconv.Atoi(first); err == nil || first == "tasks" {
		return ix.known[rest]
	}
	if proto, svc, ok := strings.Cut(rest, "."); ok && strings.HasPrefix(first, "_") && strings.HasPrefix(proto, "_") {
		return ix.known[svc]
	}
	return false
}

func (ix *index) answerPTR(resp *dns.Msg, asker netip.Addr, name string, lim answerLimits) (*dns.Msg, bool) {
	addr, ok := reverseAddr(name)
	if !ok {
		return nil, true
	}
	target, ok := ix.reverseLookup(asker, addr)
	if !ok {
		return nil, true
	}
	resp.Authoritative = true
	resp.Answer = []dns.RR{&dns.PTR{Hdr: hdr(resp.Question[0].Name, dns.TypePTR, lim.replicaTTL), Ptr: target}}
	return resp, false
}

// records answers q for one target.
func (t target) records(q dns.Question, lim answerLimits) []dns.RR {
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		var out []dns.RR
		for _, a := range t.addrs(lim) {
			if rr := addrRR(q.Name, q.Qtype, a.addr, a.ttl); rr != nil {
				out = append(out, rr)
			}
		}
		return out
	case dns.TypeSRV:
		return t.srv(q.Name, lim)
	}
	return nil // NODATA: the name exists, the type does not
}

type ttlAddr struct {
	addr netip.Addr
	ttl  uint32
	name string // the replica's or VIP's own name, for SRV targets
}

// addrs is what the target's name resolves to: the VIP, or the healthy
// replicas shuffled (so clients that take the first spread) and capped.
func (t target) addrs(lim answerLimits) []ttlAddr {
	s := t.svc
	base := s.Name
	if s.App != "" {
		base += "." + s.App
	}
	if t.slot >= 0 {
		for _, r := range s.Replicas {
			if r.Slot == t.slot {
				return []ttlAddr{{r.Addr, lim.replicaTTL, fqdn(strconv.Itoa(r.Slot) + "." + base)}}
			}
		}
		return nil
	}
	if s.Mode == ModeVIP && !t.tasks {
		return []ttlAddr{{s.VIP, lim.vipTTL, fqdn(base)}}
	}
	perm := rand.Perm(len(s.Replicas))
	if len(perm) > lim.maxAnswers {
		perm = perm[:lim.maxAnswers]
	}
	out := make([]ttlAddr, 0, len(perm))
	for _, i := range perm {
		r := s.Replicas[i]
		out = append(out, ttlAddr{r.Addr, lim.replicaTTL, fqdn(strconv.Itoa(r.Slot) + "." + base)})
	}
	return out
}

// srv answers SRV: one record per address (VIP or replica) and port.
func (t target) srv(name string, lim answerLimits) []dns.RR {
	ports := t.svc.Ports
	if t.port != nil {
		ports = []Port{*t.port}
	}
	if len(ports) == 0 {
		ports = []Port{{}}
	}
	var out []dns.RR
	for _, a := range t.addrs(lim) {
		for _, p := range ports {
			out = append(out, &dns.SRV{Hdr: hdr(name, dns.TypeSRV, a.ttl), Priority: 0, Weight: 10, Port: p.Port, Target: a.name})
		}
	}
	return out
}

// srvGlue gives the addresses of the SRV targets, so a client needs no
// second question.
func (t target) srvGlue(lim answerLimits) []dns.RR {
	var out []dns.RR
	for _, a := range t.addrs(lim) {
		qt := dns.TypeA
		if a.addr.Is6() && !a.addr.Is4In6() {
			qt = dns.TypeAAAA
		}
		out = append(out, addrRR(a.name, qt, a.addr, a.ttl))
	}
	return out
}

func addrRR(name string, qtype uint16, a netip.Addr, ttl uint32) dns.RR {
	a = a.Unmap()
	switch {
	case qtype == dns.TypeA && a.Is4():
		return &dns.A{Hdr: hdr(name, dns.TypeA, ttl), A: a.AsSlice()}
	case qtype == dns.TypeAAAA && a.Is6():
		return &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, ttl), AAAA: a.AsSlice()}
	}
	return nil
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// reverseAddr parses an in-addr.arpa or ip6.arpa name.
func reverseAddr(name string) (netip.Addr, bool) {
	const v4, v6 = ".in-addr.arpa.", ".ip6.arpa."
	switch {
	case strings.HasSuffix(name, v4):
		parts := strings.Split(strings.TrimSuffix(name, v4), ".")
		if len(parts) != 4 {
			return netip.Addr{}, false
		}
		for i, j := 0, 3; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
		a, err := netip.ParseAddr(strings.Join(parts, "."))
		return a, err == nil
	case strings.HasSuffix(name, v6):
		nibbles := strings.Split(strings.TrimSuffix(name, v6), ".")
		if len(nibbles) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, n := range nibbles {
			v, err := strconv.ParseUint(n, 16, 8)
			if err != nil || len(n) != 1 {
				return netip.Addr{}, false
			}
			pos := 31 - i
			b[pos/2] |= byte(v) << (4 * uint(1-pos%2))
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}
