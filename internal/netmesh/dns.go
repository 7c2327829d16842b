package netmesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// DNSConfig is the DNS server's configuration.
type DNSConfig struct {
	// Upstreams are host:port addresses that names not berth's go to, tried
	// in order (the node's own resolvers, in production).
	Upstreams []string
	// ForwardTimeout bounds one forwarded question over all upstreams
	// (default 2 s).
	ForwardTimeout time.Duration
	// VIPTTL is the TTL of a VIP answer (default 5 s): a VIP is stable for
	// the life of the service, so clients may keep it a while.
	VIPTTL time.Duration
	// MaxAnswers caps the records of one answer (default 32).
	MaxAnswers int
	// MaxForwards caps the questions in flight upstream (default 256); past
	// it a question gets SERVFAIL at once instead of queueing.
	MaxForwards int
	// MaxTCPConns caps the TCP connections served at once (default 128).
	MaxTCPConns int
}

func (c *DNSConfig) defaults() {
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = 2 * time.Second
	}
	if c.VIPTTL <= 0 {
		c.VIPTTL = 5 * time.Second
	}
	if c.MaxAnswers <= 0 {
		c.MaxAnswers = 32
	}
	if c.MaxForwards <= 0 {
		c.MaxForwards = 256
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = 128
	}
}

// DNS is the agent's DNS server: berth's names from the View, the rest
// forwarded. Replace may be called from any goroutine while it serves.
type DNS struct {
	cfg DNSConfig
	lim answerLimits
	ix  atomic.Pointer[index]
	fwd forwarder
	sem chan struct{}
}

// forwarder sends a question upstream; net is "udp" or "tcp", the protocol
// the client asked over, so a truncated UDP answer makes the client retry
// over TCP as it would without berth.
type forwarder interface {
	forward(ctx context.Context, req *dns.Msg, net string) (*dns.Msg, error)
}

// NewDNS makes a server with an empty view: every name is forwarded until
// the first Replace.
func NewDNS(cfg DNSConfig) (*DNS, error) {
	cfg.defaults()
	for i, u := range cfg.Upstreams {
		if _, err := netip.ParseAddrPort(u); err != nil {
			return nil, fmt.Errorf("dns upstreams[%d]: %q is not address:port: %w", i, u, err)
		}
	}
	d := &DNS{
		cfg: cfg,
		lim: answerLimits{vipTTL: uint32(cfg.VIPTTL / time.Second), replicaTTL: 1, maxAnswers: cfg.MaxAnswers},
		fwd: &upstreams{addrs: cfg.Upstreams, timeout: cfg.ForwardTimeout},
		sem: make(chan struct{}, cfg.MaxForwards),
	}
	d.ix.Store(&index{})
	return d, nil
}

// Replace makes v the whole of what the server answers, at once. An invalid
// view is refused and the previous one stays.
func (d *DNS) Replace(v View) error {
	ix, err := buildIndex(&v)
	if err != nil {
		return fmt.Errorf("replace the dns view: %w", err)
	}
	d.ix.Store(ix)
	return nil
}

// Serve answers on pc (UDP) and ln (TCP), either may be nil, until ctx is
// done. The caller opens them, so it chooses the addresses (each network's
// gateway, in production) and the tests choose 127.0.0.x:0.
func (d *DNS) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	var servers []*dns.Server
	if pc != nil {
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: d, UDPSize: dns.MaxMsgSize})
	}
	if ln != nil {
		servers = append(servers, &dns.Server{
			Listener: netutil.LimitListener(ln, d.cfg.MaxTCPConns), Handler: d,
			ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
			IdleTimeout: func() time.Duration { return 8 * time.Second }, MaxTCPQueries: 1000,
		})
	}
	if len(servers) == 0 {
		return errors.New("serve dns: give a UDP or a TCP socket")
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errc <- s.ActivateAndServe() }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, s := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.ShutdownContext(sctx)
		cancel()
	}
	if err != nil {
		return fmt.Errorf("serve dns: %w", err)
	}
	return nil
}

// ServeDNS answers one question (the miekg/dns handler).
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	proto, asker := peer(w.RemoteAddr())
	resp := d.Answer(context.Background(), req, asker, proto)
	size := dns.MaxMsgSize
	if proto == "udp" {
		size = udpSize(req)
	}
	resp.Truncate(size)
	_ = w.WriteMsg(resp)
}

// Answer replies to req from asker as the server would over proto ("udp" or
// "tcp"), before truncation. It is the whole query path less the sockets.
func (d *DNS) Answer(ctx context.Context, req *dns.Msg, asker netip.Addr, proto string) *dns.Msg {
	resp, forward := d.ix.Load().answer(req, asker, d.lim)
	if forward {
		resp = d.forward(ctx, req, proto)
	}
	if opt := req.IsEdns0(); opt != nil && resp.IsEdns0() == nil {
		resp.SetEdns0(uint16(udpSize(req)), false)
	}
	return resp
}

func (d *DNS) forward(ctx context.Context, req *dns.Msg, proto string) *dns.Msg {
	select {
	case d.sem <- struct{}{}:
		defer func() { <-d.sem }()
	default:
		return failure(req, dns.RcodeServerFailure)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ForwardTimeout)
	defer cancel()
	resp, err := d.fwd.forward(ctx, req, proto)
	if err != nil {
		return failure(req, dns.RcodeServerFailure)
	}
	return resp
}

func failure(req *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	return m
}

// udpSize is the largest UDP answer the client takes: 512 bytes, or what
// its EDNS0 record says, capped at the usual 4096.
func udpSize(req *dns.Msg) int {
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	return min(size, 4096)
}

func peer(a net.Addr) (proto string, addr netip.Addr) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return "udp", a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return "tcp", a.AddrPort().Addr().Unmap()
	}
	return "udp", netip.Addr{}
}

// upstreams forwards to the configured resolvers in order.
type upstreams struct {
	addrs   []string
	timeout time.Duration
}

func (u *upstreams) forward(ctx context.Context, req *dns.Msg, proto string) (*dns.Msg, error) {
	if len(u.addrs) == 0 {
		return nil, errors.New("no upstream resolver configured")
	}
	q := req.Copy()
	q.Id = dns.Id() // our own ID upstream: a spoofed reply must guess it
	c := &dns.Client{Net: proto, Timeout: u.timeout}
	var last error
	for _, addr := range u.addrs {
		resp, _, err := c.ExchangeContext(ctx, q, addr)
		if err == nil {
			resp.Id = req.Id
			return resp, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("forward %s: %w", req.Question[0].Name, last)
}
