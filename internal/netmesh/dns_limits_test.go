package netmesh

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func manyReplicas(n int, third byte) []Replica {
	out := make([]Replica, n)
	for i := range out {
		out[i] = Replica{Slot: i + 1, Addr: netip.AddrFrom4([4]byte{10, 3, third, byte(i + 1)})}
	}
	return out
}

func rrView(replicas []Replica) View {
	return View{
		Networks: []Network{{Name: "n", Services: []Service{{Name: "big", Mode: ModeDNSRR, Replicas: replicas}}}},
		Members:  []Member{{Addr: netip.MustParseAddr("127.0.0.5"), Networks: []string{"n"}}},
	}
}

// A dnsrr answer too big for 512 bytes is truncated over UDP (TC set, so
// the client retries over TCP) and whole over TCP; answers are capped.
func TestDNSTruncation(t *testing.T) {
	up := startUpstream(t)
	d, err := NewDNS(DNSConfig{Upstreams: []string{up.addr}, MaxAnswers: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Replace(rrView(manyReplicas(200, 0))); err != nil {
		t.Fatal(err)
	}
	server := startDNS(t, d)
	for _, name := range []string{"big.", "big.test."} { // berth's, then forwarded
		udp := ask(t, server, "127.0.0.5", "udp", name, dns.TypeA)
		if !udp.Truncated || len(udp.Answer) >= 100 {
			t.Fatalf("%s over udp: truncated %v with %d answers, want truncated", name, udp.Truncated, len(udp.Answer))
		}
		udp.Compress = true
		if msg, _ := udp.Pack(); len(msg) > dns.MinMsgSize {
			t.Fatalf("%s over udp: %d bytes, want at most 512", name, len(msg))
		}
		tcp := ask(t, server, "127.0.0.5", "tcp", name, dns.TypeA)
		if tcp.Truncated || len(tcp.Answer) != 100 {
			t.Fatalf("%s over tcp: truncated %v with %d answers, want 100 whole", name, tcp.Truncated, len(tcp.Answer))
		}
	}
}

// Replace swaps the whole view at once: a query racing it sees the old
// replicas or the new ones, never a mix.
func TestDNSReplaceIsAtomic(t *testing.T) {
	d, err := NewDNS(DNSConfig{})
	if err != nil {
		t.Fatal(err)
	}
	views := []View{rrView(manyReplicas(8, 1)), rrView(manyReplicas(8, 2))}
	if err := d.Replace(views[0]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			if err := d.Replace(views[i%2]); err != nil {
				t.Error(err)
				return
			}
		}
		cancel()
	})
	asker := netip.MustParseAddr("127.0.0.5")
	for ctx.Err() == nil {
		m := new(dns.Msg)
		m.SetQuestion("big.", dns.TypeA)
		resp := d.Answer(ctx, m, asker, "udp")
		thirds := map[byte]bool{}
		for _, rr := range resp.Answer {
			thirds[rr.(*dns.A).A.To4()[2]] = true
		}
		if len(resp.Answer) != 8 || len(thirds) != 1 {
			t.Fatalf("answer of %d records from %d views: %v", len(resp.Answer), len(thirds), resp.Answer)
		}
	}
	wg.Wait()
}

// An upstream that never answers costs the client SERVFAIL within the
// forward timeout, not a hang.
func TestDNSForwardTimeout(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	d, err := NewDNS(DNSConfig{Upstreams: []string{silent.LocalAddr().String()}, ForwardTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	server := startDNS(t, d)
	start := time.Now()
	resp := ask(t, server, "127.0.0.5", "udp", "example.test.", dns.TypeA)
	if resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v, want about the 200ms forward timeout", took)
	}
}

// An invalid view is refused with the field named, and the last good view
// keeps answering.
func TestDNSReplaceRefusesInvalidView(t *testing.T) {
	d, err := NewDNS(DNSConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Replace(testView()); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		field string
		view  View
	}{
		{"vip", View{Networks: []Network{{Name: "n", Services: []Service{{Name: "web", Mode: ModeVIP}}}}}},
		{"mode", View{Networks: []Network{{Name: "n", Services: []Service{{Name: "web", Mode: "mesh"}}}}}},
		{"name", View{Networks: []Network{{Name: "n", Services: []Service{{Name: "we b", Mode: ModeDNSRR}}}}}},
		{"replicas", View{Networks: []Network{{Name: "n", Services: []Service{{Name: "web", Mode: ModeDNSRR, Replicas: manyReplicas(MaxReplicas+1, 0)}}}}}},
		{"members[0].addr", View{Members: []Member{{}}}},
	}
	for _, tc := range bad {
		err := d.Replace(tc.view)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("replace with a bad %s: %v, want an error naming it", tc.field, err)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("web.", dns.TypeA)
	resp := d.Answer(context.Background(), m, netip.MustParseAddr("127.0.0.5"), "udp")
	if got := fmt.Sprint(values(resp.Answer)); got != "[10.9.0.2]" {
		t.Fatalf("after refused views: %s, want the last good view's [10.9.0.2]", got)
	}
}

// A replica scaled away is gone from the answers from the next Replace on
// (moby/moby#29529: Swarm's DNS kept answering such replicas).
func TestDNSScaledAwayReplicaGone(t *testing.T) {
	d, err := NewDNS(DNSConfig{})
	if err != nil {
		t.Fatal(err)
	}
	asker := netip.MustParseAddr("127.0.0.5")
	q := func(name string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		return d.Answer(context.Background(), m, asker, "udp")
	}
	if err := d.Replace(rrView(manyReplicas(3, 0))); err != nil {
		t.Fatal(err)
	}
	if got := len(q("big.").Answer); got != 3 {
		t.Fatalf("%d replicas answered, want 3", got)
	}
	if err := d.Replace(rrView(manyReplicas(2, 0))); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(values(q("big.").Answer)); got != "[10.3.0.1 10.3.0.2]" {
		t.Fatalf("after the scale down: %s, want [10.3.0.1 10.3.0.2]", got)
	}
	if resp := q("3.big."); resp.Rcode != dns.RcodeNameError {
		t.Fatalf("the scaled-away slot: %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
}
