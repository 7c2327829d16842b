package harness

import (
	"net"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// upstream is the resolver the dev cluster's agent forwards the names that
// are not berth's to (--dns-upstream): one on loopback for the whole test
// binary, answering every name NXDOMAIN, so that no container's question
// leaves the machine for its real resolvers.
var upstream struct {
	once sync.Once
	addr string
	err  error
}

// UpstreamDNS is the address of the tests' upstream resolver, started on
// first use and kept until the test binary exits.
func UpstreamDNS(tb testing.TB) string {
	tb.Helper()
	upstream.once.Do(func() {
		pc, ln, err := listenBoth()
		if err != nil {
			upstream.err = err
			return
		}
		h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeNameError)
			_ = w.WriteMsg(m)
		})
		go func() { _ = (&dns.Server{PacketConn: pc, Handler: h}).ActivateAndServe() }()
		go func() { _ = (&dns.Server{Listener: ln, Handler: h}).ActivateAndServe() }()
		upstream.addr = pc.LocalAddr().String()
	})
	if upstream.err != nil {
		tb.Fatalf("start the tests' upstream resolver: %v", upstream.err)
	}
	return upstream.addr
}

// listenBoth opens UDP and TCP on one loopback port (the agent forwards
// over the protocol it was asked on, to one address), trying other ports
// while the TCP side of a free UDP port is taken.
func listenBoth() (net.PacketConn, net.Listener, error) {
	var last error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		last = err
	}
	return nil, nil, last
}
