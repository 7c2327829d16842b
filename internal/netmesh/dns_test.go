package netmesh

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeUpstream is a DNS server on 127.0.0.1 the test owns: the only
// resolver any test sends to. It answers NAME.test. with 192.0.2.1, and
// big.test. with 100 A records (too big for 512 bytes).
type fakeUpstream struct {
	addr    string
	queries atomic.Int64
}

func startUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	pc, ln := listenUDPAndTCP(t)
	u := &fakeUpstream{addr: pc.LocalAddr().String()}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		u.queries.Add(1)
		m := new(dns.Msg)
		m.SetReply(r)
		n := 1
		if r.Question[0].Name == "big.test." {
			n = 100
		}
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(r.Question[0].Name, dns.TypeA, 60), A: net.IPv4(192, 0, 2, byte(1+i))})
		}
		m.Truncate(udpSizeFor(w, r))
		_ = w.WriteMsg(m)
	})
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go func() { _ = s.ActivateAndServe() }()
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return u
}

func udpSizeFor(w dns.ResponseWriter, r *dns.Msg) int {
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		return dns.MaxMsgSize
	}
	return udpSize(r)
}

// testView: asker 127.0.0.5 (app shop) is on "front" and "back"; 127.0.0.6
// (app blog) is on "other" only. The shared network "front" has a "web"
// of two apps.
func testView() View {
	a := netip.MustParseAddr
	return View{
		Networks: []Network{
			{Name: "front", Services: []Service{
				{Name: "web", App: "shop", Mode: ModeVIP, VIP: a("10.9.0.2"), Aliases: []string{"www"},
					Replicas: []Replica{{1, a("10.1.0.11")}, {2, a("10.1.0.12")}}},
				{Name: "web", App: "blog", Mode: ModeVIP, VIP: a("10.9.0.3")},
				{Name: "app", App: "blog", Mode: ModeVIP, VIP: a("10.9.0.4")},
			}},
			{Name: "back", Services: []Service{
				{Name: "api", App: "shop", Mode: ModeDNSRR, Ports: []Port{{"http", "tcp", 8080}},
					Replicas: []Replica{{1, a("10.2.0.21")}, {2, a("10.2.0.22")}, {3, a("10.2.0.23")}}},
			}},
			{Name: "other", Services: []Service{
				{Name: "secret", App: "blog", Mode: ModeVIP, VIP: a("10.9.9.9")},
			}},
		},
		Members: []Member{
			{Addr: a("127.0.0.5"), App: "shop", Networks: []string{"front", "back"}},
			{Addr: a("127.0.0.6"), App: "blog", Networks: []string{"other"}},
		},
		Subnets: []Subnet{{Prefix: netip.MustParsePrefix("127.0.1.0/24"), Network: "back", App: "shop"}},
	}
}

// startDNS serves d on 127.0.0.1:0 over UDP and TCP and returns the address.
// listenUDPAndTCP opens a UDP and a TCP socket on one loopback port, as a
// DNS server listens. The UDP port the kernel picks may be taken on TCP
// (an outgoing connection's port, on a busy machine): then another is
// tried.
func listenUDPAndTCP(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for try := 0; ; try++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
		if try == 10 {
			t.Fatal(err)
		}
	}
}

func startDNS(t *testing.T, d *DNS) string {
	t.Helper()
	pc, ln := listenUDPAndTCP(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Serve(ctx, pc, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return pc.LocalAddr().String()
}

// ask sends one question from the loopback address from.
func ask(t *testing.T, server, from, proto, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	var local net.Addr = &net.UDPAddr{IP: net.ParseIP(from)}
	if proto == "tcp" {
		local = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c := &dns.Client{Net: proto, Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}}
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("ask %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return resp
}

// values lists an answer's A, AAAA, SRV and PTR data, sorted.
func values(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.SRV:
			out = append(out, rr.Target+":"+strconv.Itoa(int(rr.Port)))
		case *dns.PTR:
			out = append(out, rr.Ptr)
		}
	}
	sort.Strings(out)
	return out
}

func TestDNSAnswers(t *testing.T) {
	up := startUpstream(t)
	d, err := NewDNS(DNSConfig{Upstreams: []string{up.addr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Replace(testView()); err != nil {
		t.Fatal(err)
	}
	server := startDNS(t, d)
	tests := []struct {
		name, from, q string
		qtype         uint16
		rcode         int
		want          []string
		maxTTL        uint32
	}{
		{"vip", "127.0.0.5", "web.", dns.TypeA, dns.RcodeSuccess, []string{"10.9.0.2"}, 5},
		{"case folded", "127.0.0.5", "WEB.", dns.TypeA, dns.RcodeSuccess, []string{"10.9.0.2"}, 5},
		{"alias", "127.0.0.5", "www.", dns.TypeA, dns.RcodeSuccess, []string{"10.9.0.2"}, 5},
		{"other app by SERVICE.APP", "127.0.0.5", "web.blog.", dns.TypeA, dns.RcodeSuccess, []string{"10.9.0.3"}, 5},
		{"slot", "127.0.0.5", "2.web.", dns.TypeA, dns.RcodeSuccess, []string{"10.1.0.12"}, 1},
		{"compose container name", "127.0.0.5", "shop-web-1.", dns.TypeA, dns.RcodeSuccess, []string{"10.1.0.11"}, 1},
		{"tasks in vip mode", "127.0.0.5", "tasks.web.", dns.TypeA, dns.RcodeSuccess, []string{"10.1.0.11", "10.1.0.12"}, 1},
		{"dnsrr", "127.0.0.5", "api.", dns.TypeA, dns.RcodeSuccess, []string{"10.2.0.21", "10.2.0.22", "10.2.0.23"}, 1},
		{"dnsrr srv", "127.0.0.5", "_http._tcp.api.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"1.api.shop.:8080", "2.api.shop.:8080", "3.api.shop.:8080"}, 1},
		{"no such slot is not forwarded", "127.0.0.5", "7.api.", dns.TypeA, dns.RcodeNameError, nil, 0},
		{"aaaa of a v4 service is empty, not forwarded", "127.0.0.5", "web.", dns.TypeAAAA, dns.RcodeSuccess, nil, 0},
		{"ptr of a replica", "127.0.0.5", "22.0.2.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"2.api."}, 1},
		{"service on a network the asker is not on", "127.0.0.5", "secret.", dns.TypeA, dns.RcodeNameError, nil, 0},
		{"isolated the other way", "127.0.0.6", "web.", dns.TypeA, dns.RcodeNameError, nil, 0},
		{"unknown asker", "127.0.0.7", "api.", dns.TypeA, dns.RcodeNameError, nil, 0},
		{"asker known by its subnet", "127.0.1.9", "api.", dns.TypeA, dns.RcodeSuccess, []string{"10.2.0.21", "10.2.0.22", "10.2.0.23"}, 1},
		{"asker known by its subnet sees that network only", "127.0.1.9", "web.", dns.TypeA, dns.RcodeNameError, nil, 0},
		{"no such port is not forwarded", "127.0.0.5", "_grpc._tcp.api.", dns.TypeSRV, dns.RcodeNameError, nil, 0},
		{"a service named like a TLD keeps its TLD", "127.0.0.5", "example.app.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}, 60},
		{"forwarded", "127.0.0.5", "example.test.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}, 60},
	}
	for _, tc := range tests {
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				resp := ask(t, server, tc.from, proto, tc.q, tc.qtype)
				if resp.Rcode != tc.rcode {
					t.Fatalf("rcode %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
				}
				if got := values(resp.Answer); !slices.Equal(got, tc.want) {
					t.Fatalf("answer %v, want %v", got, tc.want)
				}
				for _, rr := range resp.Answer {
					if rr.Header().Ttl > tc.maxTTL {
						t.Fatalf("ttl %d, want at most %d", rr.Header().Ttl, tc.maxTTL)
					}
				}
			})
		}
	}
}
