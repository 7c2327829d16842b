package netmesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ProxyConfig is the L4 proxy's configuration.
type ProxyConfig struct {
	// DialTimeout bounds one connection attempt to a backend (default 2 s).
	DialTimeout time.Duration
	// DrainTimeout is how long the connections of a backend that left the
	// view (or of a removed route) may go on before they are closed
	// (default 30 s).
	DrainTimeout time.Duration
	// FailCooldown is how long a backend that refused is passed over
	// (default 2 s).
	FailCooldown time.Duration
	// UDPIdleTimeout ends a UDP flow with no traffic either way (default 30 s).
	UDPIdleTimeout time.Duration
	// MaxConns caps the TCP connections of one route (default 16384);
	// MaxUDPFlows its UDP flows (default 1024; each holds a 64 KiB buffer,
	// the largest datagram). Past them new clients are turned away rather
	// than served slowly.
	MaxConns    int
	MaxUDPFlows int
	// Listen opens the routes' sockets; nil is a plain net.ListenConfig.
	// Production may set Control (IP_FREEBIND, to bind a VIP before it is
	// on an interface).
	Listen *net.ListenConfig
}

func (c *ProxyConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.DialTimeout, 2*time.Second)
	def(&c.DrainTimeout, 30*time.Second)
	def(&c.FailCooldown, 2*time.Second)
	def(&c.UDPIdleTimeout, 30*time.Second)
	if c.MaxConns <= 0 {
		c.MaxConns = 16384
	}
	if c.MaxUDPFlows <= 0 {
		c.MaxUDPFlows = 1024
	}
	if c.Listen == nil {
		c.Listen = &net.ListenConfig{}
	}
}

// Route is one address the proxy answers on (a VIP's port, or a published
// port on the node's addresses) and the backends it relays to.
type Route struct {
	Proto  string // "tcp" or "udp"
	Listen netip.AddrPort
	// Backends are the healthy replicas; the caller leaves out any that is
	// starting, unhealthy or stopping.
	Backends []Backend
	// LocalOnly uses only the node's own backends (x-berth-mesh: local).
	LocalOnly bool
	// ProxyProtocol sends a PROXY protocol v2 header first (on TCP) or
	// before each datagram (on UDP), so the backend sees the client's address.
	ProxyProtocol bool
	// Transparent (TCP) connects to the backend from the client's own
	// address (IP_TRANSPARENT), so the backend sees it with no header. The
	// backend's replies must come back through this node: the caller's
	// policy routing (replies marked and routed to lo), so in practice with
	// LocalOnly.
	Transparent bool
}

func (r Route) key() string { return r.Proto + " " + r.Listen.String() }

// Proxy is the node's L4 proxy: every route it was given, each with its
// socket and backends.
type Proxy struct {
	cfg    ProxyConfig
	mu     sync.Mutex
	routes map[string]routeServer
	closed bool
}

// routeServer is one route's running socket.
type routeServer interface {
	addr() net.Addr
	pool() *pool
	opts() Route
	setOpts(Route)
	close() // stop accepting; the pool drains what is open
}

// NewProxy makes a proxy with no routes.
func NewProxy(cfg ProxyConfig) *Proxy {
	cfg.defaults()
	return &Proxy{cfg: cfg, routes: map[string]routeServer{}}
}

// Apply makes routes the whole set the proxy serves: it opens the sockets
// of new routes, closes those of routes no longer given (their
// connections drain), and replaces each route's backends at once. A route
// whose socket cannot be opened is reported and the others still applied.
func (p *Proxy) Apply(ctx context.Context, routes []Route) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("apply routes: the proxy is closed")
	}
	want := make(map[string]bool, len(routes))
	var errs []error
	for _, r := range routes {
		k := r.key()
		want[k] = true
		rs := p.routes[k]
		if rs == nil {
			var err error
			if rs, err = p.open(ctx, r); err != nil {
				errs = append(errs, err)
				continue
			}
			p.routes[k] = rs
		}
		rs.setOpts(r)
		rs.pool().set(r.Backends, r.LocalOnly)
	}
	for k, rs := range p.routes {
		if !want[k] {
			rs.close()
			delete(p.routes, k)
		}
	}
	return errors.Join(errs...)
}

func (p *Proxy) open(ctx context.Context, r Route) (routeServer, error) {
	pl := newPool(p.cfg.FailCooldown, p.cfg.DrainTimeout)
	switch r.Proto {
	case "tcp":
		ln, err := p.cfg.Listen.Listen(ctx, "tcp", r.Listen.String())
		if err != nil {
			return nil, fmt.Errorf("route %s: listen: %w", r.key(), err)
		}
		return startTCP(ln.(*net.TCPListener), r, pl, &p.cfg), nil
	case "udp":
		pc, err := p.cfg.Listen.ListenPacket(ctx, "udp", r.Listen.String())
		if err != nil {
			return nil, fmt.Errorf("route %s: listen: %w", r.key(), err)
		}
		return startUDP(pc.(*net.UDPConn), r, pl, &p.cfg), nil
	}
	return nil, fmt.Errorf("route %s: proto %q is neither tcp nor udp", r.key(), r.Proto)
}

// Addr is the address a route listens on (its port filled in when the
// route asked for port 0), or nil if the proxy has no such route.
func (p *Proxy) Addr(proto string, listen netip.AddrPort) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.routes[Route{Proto: proto, Listen: listen}.key()]
	if rs == nil {
		return nil
	}
	return rs.addr()
}

// Close stops every route; their open connections drain as on removal.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for k, rs := range p.routes {
		rs.close()
		delete(p.routes, k)
	}
}
