package netmesh

import (
	"context"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// fakeForwarder answers every forwarded question with NXDOMAIN, so the
// fuzzer runs the whole query path without a socket.
type fakeForwarder struct{}

func (fakeForwarder) forward(_ context.Context, req *dns.Msg, _ string) (*dns.Msg, error) {
	return failure(req, dns.RcodeNameError), nil
}

// FuzzDNSQuery feeds raw messages through the query path: no panic, and
// every answer packs within the size the client can take.
func FuzzDNSQuery(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"web.", dns.TypeA}, {"_http._tcp.api.", dns.TypeSRV}, {"22.0.2.10.in-addr.arpa.", dns.TypePTR}, {"example.test.", dns.TypeAAAA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, false)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
	}
	d, err := NewDNS(DNSConfig{})
	if err != nil {
		f.Fatal(err)
	}
	d.fwd = fakeForwarder{}
	v := testView()
	v.Networks = append(v.Networks, rrView(manyReplicas(200, 0)).Networks...)
	v.Members[0].Networks = append(v.Members[0].Networks, "n")
	if err := d.Replace(v); err != nil {
		f.Fatal(err)
	}
	asker := netip.MustParseAddr("127.0.0.5")
	f.Fuzz(func(t *testing.T, raw []byte, udp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(raw); err != nil {
			return
		}
		proto, size := "tcp", dns.MaxMsgSize
		if udp {
			proto, size = "udp", udpSize(req)
		}
		resp := d.Answer(context.Background(), req, asker, proto)
		resp.Truncate(size)
		b, err := resp.Pack()
		if err != nil {
			t.Fatalf("answer does not pack: %v\n%v", err, resp)
		}
		if len(b) > size {
			t.Fatalf("answer of %d bytes, client takes %d", len(b), size)
		}
	})
}
