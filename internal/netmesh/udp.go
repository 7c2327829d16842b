package netmesh

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

const maxDatagram = 64 << 10

// udpRoute relays datagrams per client flow: each client address gets a
// connected socket to one backend, kept while traffic flows either way.
type udpRoute struct {
	pc    *net.UDPConn
	pl    *pool
	cfg   *ProxyConfig
	mu    sync.Mutex
	r     Route
	flows map[netip.AddrPort]*flow
	done  bool
}

func startUDP(pc *net.UDPConn, r Route, pl *pool, cfg *ProxyConfig) *udpRoute {
	u := &udpRoute{pc: pc, pl: pl, cfg: cfg, r: r, flows: map[netip.AddrPort]*flow{}}
	go u.serve()
	return u
}

func (u *udpRoute) addr() net.Addr { return u.pc.LocalAddr() }
func (u *udpRoute) pool() *pool    { return u.pl }
func (u *udpRoute) opts() Route    { u.mu.Lock(); defer u.mu.Unlock(); return u.r }
func (u *udpRoute) setOpts(r Route) {
	u.mu.Lock()
	u.r = r
	u.mu.Unlock()
}

func (u *udpRoute) close() {
	u.mu.Lock()
	u.done = true
	u.mu.Unlock()
	_ = u.pc.Close()
	u.pl.closeAll()
}

func (u *udpRoute) serve() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := u.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f := u.flow(from)
		if f == nil {
			continue // no backend, or too many flows: the datagram is dropped
		}
		f.send(buf[:n])
	}
}

// flow finds or starts the flow of a client.
func (u *udpRoute) flow(client netip.AddrPort) *flow {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f := u.flows[client]; f != nil || u.done {
		return f
	}
	if len(u.flows) >= u.cfg.MaxUDPFlows {
		return nil
	}
	f := &flow{route: u, client: client, tried: map[*backend]bool{}}
	if !f.connect() {
		return nil
	}
	u.flows[client] = f
	go f.relayBack()
	return f
}

// flow is one client's datagrams to one backend.
type flow struct {
	route  *udpRoute
	client netip.AddrPort
	tried  map[*backend]bool

	mu     sync.Mutex
	b      *backend
	conn   *net.UDPConn
	last   []byte // the last datagram, resent if the backend refuses it
	active time.Time
}

// connect picks a backend not tried yet and dials it; false if none is
// left.
func (f *flow) connect() bool {
	for {
		b := f.route.pl.pick(f.tried, f)
		if b == nil {
			return false
		}
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b.Addr))
		if err == nil {
			f.mu.Lock()
			f.b, f.conn, f.active = b, c, time.Now()
			f.mu.Unlock()
			return true
		}
		f.route.pl.failed(b, f)
		f.tried[b] = true
	}
}

func (f *flow) send(p []byte) {
	if r := f.route.opts(); r.ProxyProtocol {
		// A wildcard listener is dual-stack: the client comes as a
		// v4-mapped address and the socket's own as "::", which the
		// header cannot carry together. Both unmapped: IPv4 as it is on
		// the wire. (The listener's address stands for the one the
		// client sent to, which a wildcard socket does not know.)
		src := netip.AddrPortFrom(f.client.Addr().Unmap(), f.client.Port())
		local := netip.MustParseAddrPort(f.route.pc.LocalAddr().String())
		dst := netip.AddrPortFrom(r.Listen.Addr().Unmap(), local.Port())
		h := proxyproto.HeaderProxyFromAddrs(2, net.UDPAddrFromAddrPort(src), net.UDPAddrFromAddrPort(dst))
		if hb, err := h.Format(); err == nil {
			p = append(hb, p...)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = append(f.last[:0], p...)
	f.active = time.Now()
	_, _ = f.conn.Write(p)
}

// relayBack sends the backend's replies to the client until the flow is
// idle, its backend drained, or every backend refused.
func (f *flow) relayBack() {
	defer f.end()
	buf := make([]byte, maxDatagram)
	for {
		f.mu.Lock()
		conn, idleAt := f.conn, f.active.Add(f.route.cfg.UDPIdleTimeout)
		f.mu.Unlock()
		_ = conn.SetReadDeadline(idleAt)
		n, err := conn.Read(buf)
		switch {
		case err == nil:
			f.mu.Lock()
			f.active = time.Now()
			f.mu.Unlock()
			_, _ = f.route.pc.WriteToUDPAddrPort(buf[:n], f.client)
		case errors.Is(err, syscall.ECONNREFUSED):
			if !f.failover() {
				return
			}
		case errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err):
			f.mu.Lock()
			idle := time.Since(f.active) >= f.route.cfg.UDPIdleTimeout
			f.mu.Unlock()
			if idle {
				return
			}
		default:
			return // closed: drained or the route went away
		}
	}
}

// failover moves the flow to the next backend after its backend refused,
// and resends the datagram it refused.
func (f *flow) failover() bool {
	f.mu.Lock()
	old, oldConn := f.b, f.conn
	f.mu.Unlock()
	f.tried[old] = true
	_ = oldConn.Close()
	f.route.pl.failed(old, f)
	if !f.connect() {
		f.mu.Lock()
		f.b = nil
		f.mu.Unlock()
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, _ = f.conn.Write(f.last)
	return true
}

func (f *flow) end() {
	f.route.mu.Lock()
	if f.route.flows[f.client] == f {
		delete(f.route.flows, f.client)
	}
	f.route.mu.Unlock()
	f.mu.Lock()
	b := f.b
	f.mu.Unlock()
	_ = f.Close()
	if b != nil {
		f.route.pl.done(b, f)
	}
}

// Close ends the flow (the pool calls it at the drain deadline).
func (f *flow) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		return f.conn.Close()
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
