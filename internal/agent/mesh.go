package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/netmesh"
)

// dnsPort is where containers ask their resolver: port 53 of their
// network's gateway on this node.
const dnsPort = 53

// resolvConf is where the node's own resolvers are read from.
const resolvConf = "/etc/resolv.conf"

// mesh is the agent's service discovery and routing mesh (package
// netmesh), fed from the network map: a DNS server on each of this node's
// network gateways, and the L4 proxy that answers the published ingress
// ports on every node. It runs only with Config.Overlay; without it Docker
// publishes ports and answers names, as before the overlay.
type mesh struct {
	a     *Agent
	dns   *netmesh.DNS
	proxy *netmesh.Proxy
	// latest is the last map applied, read by the task loop (exec tasks'
	// environment).
	latest atomic.Pointer[api.NetworkMap]
	drains drains
	// newest is the last map the watch received, which may not be applied
	// yet: the overlay goes first, and fan-out paces maps. Its withdrawals
	// hold at once (withdraw), and an older map applied after it adds
	// back no replica it dropped.
	newest *api.NetworkMap

	mu      sync.Mutex
	port    uint16          // dnsPort; tests take 0
	base    context.Context // the agent's run: every DNS socket ends with it
	closed  bool
	servers map[netip.Addr]*dnsSocket
	// early are gateways a task was given as resolver before the network
	// map had this node's slice (NodeTasks may come first): served until
	// the map lists them, so a container's first question finds a server.
	early map[netip.Addr]bool
	// logged is the last error logged per subject, so a failure repeated
	// by every map and re-apply is logged once until it changes.
	logged map[string]string
}

// dnsSocket is one gateway's DNS server.
type dnsSocket struct {
	udp, tcp net.Addr
	cancel   context.CancelFunc
	done     chan struct{}
}

// startMesh sets up the mesh when the overlay is on and subscribes it to
// the network map; it stops with ctx, and is waited for on wg. A bad
// upstream resolver stops the agent: it is a setting, and a node whose
// containers cannot resolve is worse than one that does not start.
func (a *Agent) startMesh(ctx context.Context, wg *sync.WaitGroup) error {
	if !a.cfg.Overlay {
		return nil
	}
	m, err := newMesh(ctx, a, dnsPort)
	if err != nil {
		return err
	}
	// Under mu for the tests that look at it; the task loop, started
	// after, reads it without.
	a.mu.Lock()
	a.mesh = m
	a.mu.Unlock()
	a.onNetMap(m.apply)
	a.onNetMapReceived(m.withdraw)
	wg.Go(func() {
		<-ctx.Done()
		m.close()
	})
	return nil
}

func newMesh(ctx context.Context, a *Agent, port uint16) (*mesh, error) {
	ups := a.cfg.DNSUpstreams
	if len(ups) == 0 {
		ups = nodeResolvers(resolvConf)
		if len(ups) == 0 {
			a.log.Warn("no nameserver in " + resolvConf + ": containers resolve berth's names only (give --dns-upstream)")
		}
	}
	d, err := netmesh.NewDNS(netmesh.DNSConfig{Upstreams: ups})
	if err != nil {
		return nil, fmt.Errorf("start the agent's DNS (check --dns-upstream): %w", err)
	}
	return &mesh{
		a: a, dns: d, port: port, base: ctx,
		proxy:   netmesh.NewProxy(netmesh.ProxyConfig{}),
		servers: map[netip.Addr]*dnsSocket{},
		early:   map[netip.Addr]bool{},
		logged:  map[string]string{},
	}, nil
}

// apply makes DNS, the proxy and the DNS sockets match m. A bad entry is
// left out and logged; the rest is applied.
func (m *mesh) apply(ctx context.Context, nm *api.NetworkMap) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.applyLocked(ctx, nm)
}

// withdraw takes out of DNS and the mesh, at once, every replica that nm,
// a map just received, no longer lists, on the routes and names already
// applied. A replica told to stop gets its signal after its drain delay
// on its own node; the full apply of nm waits behind the overlay's
// (iptables, shared by every netns on a machine) and the fan-out's pace,
// which under load took longer than the delay, so some node's mesh still
// sent it connections as it closed its socket. Adding replicas stays in
// apply, after the overlay routed their slices.
func (m *mesh) withdraw(ctx context.Context, nm *api.NetworkMap) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.newest = nm
	if cur := m.latest.Load(); cur != nil && withdraws(cur, nm) {
		m.applyLocked(ctx, cur)
	}
}

func (m *mesh) applyLocked(ctx context.Context, nm *api.NetworkMap) {
	m.latest.Store(nm)
	if m.newest != nil && m.newest != nm {
		nm = withoutWithdrawn(nm, m.newest)
	}
	self := m.a.NodeID()
	view, badView := meshView(nm)
	m.report("dns view", errors.Join(append(badView, m.dns.Replace(view))...))
	routes, badRoutes := meshRoutes(nm, self)
	m.report("mesh routes", errors.Join(append(badRoutes, m.proxy.Apply(ctx, routes))...))
	gws, badGws := nodeGateways(nm, self)
	m.report("dns gateways", errors.Join(badGws...))
	for _, gw := range gws {
		delete(m.early, gw) // the map has it now
	}
	m.serveOn(gws)
}

// withdraws reports whether next drops an endpoint cur lists.
func withdraws(cur, next *api.NetworkMap) bool {
	keep := endpointIDs(next)
	for _, s := range cur.Services {
		for _, e := range s.Endpoints {
			if !keep[e.TaskID] {
				return true
			}
		}
	}
	return false
}

// withoutWithdrawn is nm with only the endpoints newer lists too; nm is
// not changed.
func withoutWithdrawn(nm, newer *api.NetworkMap) *api.NetworkMap {
	keep := endpointIDs(newer)
	out := *nm
	out.Services = make([]api.MapService, len(nm.Services))
	for i, s := range nm.Services {
		s.Endpoints = slices.DeleteFunc(slices.Clone(s.Endpoints), func(e api.MapEndpoint) bool { return !keep[e.TaskID] })
		out.Services[i] = s
	}
	return &out
}

func endpointIDs(nm *api.NetworkMap) map[string]bool {
	ids := map[string]bool{}
	for _, s := range nm.Services {
		for _, e := range s.Endpoints {
			ids[e.TaskID] = true
		}
	}
	return ids
}

// serveEarly serves DNS on gw, a task's resolver, before the map has it.
func (m *mesh) serveEarly(gw netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.servers[gw] != nil || len(m.early) >= maxEarlyGateways {
		return
	}
	m.early[gw] = true
	m.serveOn(nil)
}

// maxEarlyGateways bounds the gateways served ahead of the map: a node has
// at most one per network.
const maxEarlyGateways = 256

// serveOn runs a DNS server on each of gws and those served early, and
// stops those on others. A socket that cannot be opened is tried again
// with the next map.
func (m *mesh) serveOn(gws []netip.Addr) {
	want := maps.Clone(m.early)
	for _, gw := range gws {
		want[gw] = true
	}
	for _, gw := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if m.servers[gw] != nil {
			continue
		}
		s, err := m.open(gw)
		m.report("dns on "+gw.String(), err)
		if err == nil {
			m.servers[gw] = s
			m.a.log.Info("dns listening", "addr", s.udp)
		}
	}
	for gw, s := range m.servers {
		if !want[gw] {
			s.stop()
			delete(m.servers, gw)
			m.a.log.Info("dns stopped: the node has no slice of its network any more", "addr", s.udp)
		}
	}
}

// open listens on gw's DNS port, UDP and TCP. The gateway is on a bridge
// the engine may not have made yet (the network comes with the first task
// on it), so the sockets bind an address the node does not have yet.
func (m *mesh) open(gw netip.Addr) (*dnsSocket, error) {
	lc := freeBind()
	addr := netip.AddrPortFrom(gw, m.port).String()
	pc, err := lc.ListenPacket(m.base, "udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for dns on udp %s: %w", addr, err)
	}
	if m.port == 0 { // tests: TCP on the port UDP got
		addr = pc.LocalAddr().String()
	}
	ln, err := lc.Listen(m.base, "tcp4", addr)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("listen for dns on tcp %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(m.base)
	s := &dnsSocket{udp: pc.LocalAddr(), tcp: ln.Addr(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := m.dns.Serve(ctx, pc, ln); err != nil && ctx.Err() == nil {
			m.a.log.Warn("dns server stopped; it is opened again with the next network map", "addr", s.udp, "err", err)
		}
	}()
	return s, nil
}

func (s *dnsSocket) stop() {
	s.cancel()
	<-s.done
}

// close stops every DNS server and the proxy (its connections drain).
func (m *mesh) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for gw, s := range m.servers {
		s.stop()
		delete(m.servers, gw)
	}
	m.proxy.Close()
	m.drains.stop()
}

// report logs err under subject when it differs from the last one logged.
func (m *mesh) report(subject string, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if m.logged[subject] == msg {
		return
	}
	m.logged[subject] = msg
	if err != nil {
		m.a.log.Warn(subject+": part of the network map is not applied; the rest is", "err", err)
	}
}

// dnsAddr is the UDP address of the DNS server on gw, if it runs (tests).
func (m *mesh) dnsAddr(gw netip.Addr) net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.servers[gw]; s != nil {
		return s.udp
	}
	return nil
}

// nodeResolvers are the nameservers of the node's resolv.conf, as
// address:53. Loopback ones (a local stub resolver) are kept: the agent
// forwards from the host, where they answer, not from the container.
func nodeResolvers(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(fields[1]); err == nil {
			out = append(out, netip.AddrPortFrom(a, 53).String())
		}
	}
	return out
}
