package netmesh

import (
	"io"
	"net/netip"
	"sync"
	"time"
)

// Backend is one healthy replica a route balances over.
type Backend struct {
	Addr netip.AddrPort
	// Local is true for a replica on this node: it is chosen first, and it
	// is the only kind a LocalOnly route uses.
	Local bool
}

// backend is a Backend with its live state. It outlives its removal from
// the view while its connections drain.
type backend struct {
	Backend
	active    int // connections or flows open
	downUntil time.Time
	removed   bool
	drain     *time.Timer
	conns     map[io.Closer]struct{}
}

// pool balances one route's connections: least connections first, ties
// taken in turn; local backends before remote ones; a backend that just
// refused is passed over for the cooldown unless none other is left.
type pool struct {
	mu        sync.Mutex
	all       map[netip.AddrPort]*backend // current and draining
	order     []*backend                  // current, in the view's order
	next      int
	localOnly bool
	cooldown  time.Duration
	drainFor  time.Duration
	now       func() time.Time
}

func newPool(cooldown, drainFor time.Duration) *pool {
	return &pool{all: map[netip.AddrPort]*backend{}, cooldown: cooldown, drainFor: drainFor, now: time.Now}
}

// set makes bs the current backends, and localOnly whether only the local
// ones are used. One that leaves takes no new connections; those it has
// are closed after the drain timeout.
func (p *pool) set(bs []Backend, localOnly bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.localOnly = localOnly
	keep := make(map[netip.AddrPort]bool, len(bs))
	p.order = p.order[:0]
	for _, nb := range bs {
		if keep[nb.Addr] {
			continue
		}
		keep[nb.Addr] = true
		b := p.all[nb.Addr]
		if b == nil {
			b = &backend{conns: map[io.Closer]struct{}{}}
			p.all[nb.Addr] = b
		}
		b.Backend = nb
		if b.removed {
			b.removed = false
			b.drain.Stop()
		}
		p.order = append(p.order, b)
	}
	for addr, b := range p.all {
		if !keep[addr] && !b.removed {
			p.retire(b)
		}
	}
}

// retire stops new connections to b and closes its open ones after the
// drain timeout.
func (p *pool) retire(b *backend) {
	b.removed = true
	if b.active == 0 {
		delete(p.all, b.Addr)
		return
	}
	b.drain = time.AfterFunc(p.drainFor, func() {
		p.mu.Lock()
		conns := make([]io.Closer, 0, len(b.conns))
		if b.removed {
			for c := range b.conns {
				conns = append(conns, c)
			}
		}
		p.mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
}

// pick chooses a backend not in tried and counts a connection on it, with
// c to close at the drain deadline. nil means no backend is left.
func (p *pool) pick(tried map[*backend]bool, c io.Closer) *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var best *backend
	bestRank := 0
	n := len(p.order)
	for i := range n {
		b := p.order[(p.next+i)%n]
		if tried[b] || (p.localOnly && !b.Local) {
			continue
		}
		rank := 0 // lower is better: up before down, local before remote
		if now.Before(b.downUntil) {
			rank += 2
		}
		if !b.Local {
			rank++
		}
		if best == nil || rank < bestRank || rank == bestRank && b.active < best.active {
			best, bestRank = b, rank
		}
	}
	if best == nil {
		return nil
	}
	p.next++
	best.active++
	best.conns[c] = struct{}{}
	return best
}

// failed marks b as refusing and gives back the connection pick counted.
func (p *pool) failed(b *backend, c io.Closer) {
	p.mu.Lock()
	b.downUntil = p.now().Add(p.cooldown)
	p.mu.Unlock()
	p.done(b, c)
}

// done gives back a connection pick counted.
func (p *pool) done(b *backend, c io.Closer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b.active--
	delete(b.conns, c)
	if b.removed && b.active == 0 {
		if b.drain != nil {
			b.drain.Stop()
		}
		if p.all[b.Addr] == b {
			delete(p.all, b.Addr)
		}
	}
}

// closeAll retires every backend: the route is going away.
func (p *pool) closeAll() { p.set(nil, false) }
