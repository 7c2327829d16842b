package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/overlay"
	"github.com/berth-dev/berth/internal/types"
)

// networkMap serves GET /v1/netmap as a manager does: blocking on ?index=.
func (m *fakeManager) networkMap(w http.ResponseWriter, r *http.Request) {
	fail, none := false, false
	m.read(func() {
		if m.failNetMap > 0 {
			m.failNetMap--
			fail = true
		}
		none = m.noNetMap
	})
	if none {
		replyError(w, http.StatusNotFound, "404 page not found")
		return
	}
	if fail {
		replyError(w, http.StatusInternalServerError, "no leader")
		return
	}
	index, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		m.mu.Lock()
		if m.index > index || wait == 0 {
			b, _ := json.Marshal(m.netmap)
			w.Header().Set(api.HeaderIndex, strconv.FormatUint(m.index, 10))
			m.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
			return
		}
		changed := m.changed
		m.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			wait = 0
		case <-r.Context().Done():
			return
		}
	}
}

// fakeOverlay records what the agent applies instead of changing the
// machine's network namespace.
type fakeOverlay struct {
	mu       sync.Mutex
	underlay netip.Addr
	applied  []overlay.Desired
	removed  int
	taken    []ipam.Taken // what Routes answers
}

func (f *fakeOverlay) Apply(_ context.Context, d overlay.Desired) (overlay.Changes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, d)
	return overlay.Changes{}, nil
}

func (f *fakeOverlay) Remove(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed++
	return nil
}

func (f *fakeOverlay) MTU() (int, error) { return 1450, nil }

func (f *fakeOverlay) Routes(overlay.Desired) ([]ipam.Taken, error) { return f.taken, nil }

func (f *fakeOverlay) last() (overlay.Desired, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applied) == 0 {
		return overlay.Desired{}, 0
	}
	return f.applied[len(f.applied)-1], len(f.applied)
}

// runOverlayAgent runs an agent with --overlay against m, its overlay fo.
func runOverlayAgent(t *testing.T, m *fakeManager, fd *fakeDriver, fo *fakeOverlay) *Agent {
	t.Helper()
	cfg := testConfig(t, m, fd)
	return runOverlayAgentWith(t, m, cfg, fo)
}

func runOverlayAgentWith(t *testing.T, m *fakeManager, cfg Config, fo *fakeOverlay) *Agent {
	t.Helper()
	cfg.Overlay = true
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.newOverlay = func(u netip.Addr) (kernelOverlay, error) {
		fo.mu.Lock()
		fo.underlay = u
		fo.mu.Unlock()
		return fo, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, "the agent to join", func() bool { return a.NodeID() != "" && m.known(a.NodeID()) })
	return a
}

// twoNodeMap is a map of network app_default with a slice for self and
// one for peer "n2", and service web with a VIP and a replica on n2.
func twoNodeMap(self string) api.NetworkMap {
	return api.NetworkMap{
		Networks: []api.MapNetwork{{Key: "app_default", App: "app", Subnet: "10.240.0.0/18",
			Slices: map[string]string{self: "10.240.1.0/24", "n2": "10.240.2.0/24"}}},
		Nodes: []api.MapNode{{ID: self, Underlay: "192.0.2.1", Ready: true}, {ID: "n2", Underlay: "192.0.2.2", Ready: true}},
		Services: []api.MapService{{App: "app", Name: "web",
			Networks:  []api.MapAttachment{{Network: "app_default", VIP: "10.240.0.1"}},
			Ports:     []api.MapPort{{Target: 80, Protocol: "tcp"}, {Target: 80, Published: 8080, Protocol: "tcp"}, {Target: 53, Protocol: "udp"}},
			Endpoints: []api.MapEndpoint{{TaskID: "t2", NodeID: "n2", Addresses: map[string]string{"app_default": "10.240.2.2"}}},
		}},
	}
}

func TestDesiredFromMap(t *testing.T) {
	net := overlay.Network{Subnet: netip.MustParsePrefix("10.240.0.0/18"), Slice: netip.MustParsePrefix("10.240.1.0/24")}
	peer := overlay.Peer{Underlay: netip.MustParseAddr("192.0.2.2"), Slices: []netip.Prefix{netip.MustParsePrefix("10.240.2.0/24")}}
	vip := overlay.VIP{Addr: netip.MustParseAddr("10.240.0.1"), Subnet: net.Subnet,
		Ports:    []overlay.VIPPort{{Proto: "tcp", Port: 80}, {Proto: "udp", Port: 53}},
		Backends: []netip.Addr{netip.MustParseAddr("10.240.2.2")}}
	subnets := []netip.Prefix{net.Subnet}
	noBackends := vip
	noBackends.Backends = []netip.Addr{}
	noSlice := twoNodeMap("n1")
	delete(noSlice.Networks[0].Slices, "n1")
	badPeer := twoNodeMap("n1")
	badPeer.Nodes[1].Underlay = "nowhere"
	wildPeer := twoNodeMap("n1")
	wildPeer.Nodes[1].Underlay = "0.0.0.0"
	for _, tc := range []struct {
		name string
		m    api.NetworkMap
		want overlay.Desired
		bad  int
	}{
		{"two nodes", twoNodeMap("n1"), overlay.Desired{Subnets: subnets, Networks: []overlay.Network{net}, Peers: []overlay.Peer{peer}, VIPs: []overlay.VIP{vip}}, 0},
		{"no slice here: only the network's subnet, routed nowhere", noSlice, overlay.Desired{Subnets: subnets}, 0},
		{"peer without an address is left out, and its replica", badPeer, overlay.Desired{Subnets: subnets, Networks: []overlay.Network{net}, VIPs: []overlay.VIP{noBackends}}, 1},
		{"peer at 0.0.0.0 (a wildcard --listen) too", wildPeer, overlay.Desired{Subnets: subnets, Networks: []overlay.Network{net}, VIPs: []overlay.VIP{noBackends}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, bad := desiredFromMap(&tc.m, "n1")
			if !reflect.DeepEqual(got, tc.want) || len(bad) != tc.bad {
				t.Errorf("got %+v (%v)\nwant %+v (%d errors)", got, bad, tc.want, tc.bad)
			}
		})
	}
}

// TestNetMapFanOut: subscribers are called in order with the latest map
// only, and again on the re-apply timer.
func TestNetMapFanOut(t *testing.T) {
	a := &Agent{}
	var mu sync.Mutex
	var calls []string
	for _, who := range []string{"first", "second"} {
		a.onNetMap(func(_ context.Context, m *api.NetworkMap) {
			mu.Lock()
			calls = append(calls, who+":"+m.Nodes[0].ID)
			mu.Unlock()
		})
	}
	mailbox := make(chan *api.NetworkMap, 1)
	deliverLatest(mailbox, &api.NetworkMap{Nodes: []api.MapNode{{ID: "old"}}})
	deliverLatest(mailbox, &api.NetworkMap{Nodes: []api.MapNode{{ID: "new"}}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go a.fanOutNetMap(ctx, mailbox, 20*time.Millisecond)
	waitFor(t, "a re-apply", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) >= 4
	})
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"first:new", "second:new", "first:new", "second:new"}; !reflect.DeepEqual(calls[:4], want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
}

// TestNetMapWatchAppliesOverlay: the agent follows the map through the
// manager's failures and applies each change to its overlay, with its
// underlay from the map.
func TestNetMapWatchAppliesOverlay(t *testing.T) {
	m := newFakeManager(t)
	m.failNetMap = 2
	fo := &fakeOverlay{}
	a := runOverlayAgent(t, m, newFakeDriver("docker"), fo)
	one := twoNodeMap(a.NodeID())
	one.Networks[0].Slices = map[string]string{a.NodeID(): "10.240.1.0/24"}
	m.update(func() { m.netmap = one })
	waitFor(t, "the overlay applied with this node's network", func() bool {
		d, _ := fo.last()
		return len(d.Networks) == 1 && len(d.Peers) == 0
	})
	if fo.underlay != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("underlay = %s", fo.underlay)
	}
	m.update(func() { m.netmap = twoNodeMap(a.NodeID()) })
	waitFor(t, "the peer applied", func() bool {
		d, _ := fo.last()
		return len(d.Peers) == 1 && len(d.VIPs) == 1
	})
	// The node leaves the cluster: the overlay goes.
	m.update(func() { m.netmap = api.NetworkMap{Nodes: []api.MapNode{{ID: "n2", Underlay: "192.0.2.2"}}} })
	waitFor(t, "the overlay removed", func() bool {
		fo.mu.Lock()
		defer fo.mu.Unlock()
		return fo.removed == 1
	})
}

// TestTaskWaitsForItsSlice: with the overlay on, a docker task whose
// network has no slice of this node yet is not started (a task of a
// service without networks is); once NodeTasks has the slice it starts on
// it, with the slice's gateway and the overlay's MTU.
func TestTaskWaitsForItsSlice(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("docker")
	a := runOverlayAgent(t, m, fd, &fakeOverlay{})
	m.update(func() { m.netmap = twoNodeMap(a.NodeID()) })
	waitFor(t, "the MTU", func() bool { return a.net.mtu.Load() == 1450 })
	web := service("web", 1)
	web.Driver = "docker"
	web.Networks = []types.NetworkAttachment{{Name: "default"}}
	plain := service("plain", 1)
	plain.Driver = "docker"
	m.addService("app", web)
	m.addService("app", plain)
	ids := m.addTasks(a.NodeID(), "app", web, "web", 1)
	plainIDs := m.addTasks(a.NodeID(), "app", plain, "plain", 1)
	waitFor(t, "the task without networks to run", func() bool { return m.inState(types.TaskRunning, plainIDs...) })
	waitFor(t, "the waiting task to say why", func() bool {
		return m.task(ids[0]).Progress == "waiting for the node's slice of network default"
	})
	fd.mu.Lock()
	started := fd.starts[ids[0]]
	fd.mu.Unlock()
	if started != 0 {
		t.Fatal("a task started before its network had a slice")
	}
	m.update(func() { m.apps["app"].Slices = map[string]string{"default": "10.240.1.0/24"} })
	waitFor(t, "the task to run", func() bool { return m.inState(types.TaskRunning, ids...) })
	fd.mu.Lock()
	cfg := fd.configs[ids[0]]
	fd.mu.Unlock()
	want := driver.Slice{Subnet: netip.MustParsePrefix("10.240.1.0/24"), Gateway: netip.MustParseAddr("10.240.1.1"), MTU: 1450}
	if !cfg.Overlay || cfg.Slices["default"] != want {
		t.Errorf("config: overlay %v, slices %+v; want %+v", cfg.Overlay, cfg.Slices, want)
	}
}

// TestNoNetMapLocalNetworks: a manager without the overlay (no network
// map) does not hold tasks back: they start on local networks.
func TestNoNetMapLocalNetworks(t *testing.T) {
	m := newFakeManager(t)
	m.noNetMap = true
	fd := newFakeDriver("docker")
	a := runOverlayAgent(t, m, fd, &fakeOverlay{})
	web := service("web", 1)
	web.Driver = "docker"
	web.Networks = []types.NetworkAttachment{{Name: "default"}}
	m.addService("app", web)
	ids := m.addTasks(a.NodeID(), "app", web, "web", 1)
	waitFor(t, "the task to run", func() bool { return m.inState(types.TaskRunning, ids...) })
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if cfg := fd.configs[ids[0]]; len(cfg.Slices) != 0 {
		t.Errorf("slices %v, want none", cfg.Slices)
	}
}

// TestNoUnderlayStillRunsTasks: a map that gives this node no usable
// underlay address means no overlay here, but the node's tasks start.
func TestNoUnderlayStillRunsTasks(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("docker")
	fo := &fakeOverlay{}
	a := runOverlayAgent(t, m, fd, fo)
	nm := twoNodeMap(a.NodeID())
	nm.Nodes[0].Underlay = "0.0.0.0"
	m.update(func() { m.netmap = nm })
	web := service("web", 1)
	web.Driver = "docker"
	web.Networks = []types.NetworkAttachment{{Name: "default"}}
	m.addService("app", web)
	m.update(func() { m.apps["app"].Slices = map[string]string{"default": "10.240.1.0/24"} })
	ids := m.addTasks(a.NodeID(), "app", web, "web", 1)
	waitFor(t, "the task to run", func() bool { return m.inState(types.TaskRunning, ids...) })
	if _, n := fo.last(); n != 0 {
		t.Errorf("the overlay was applied %d times without an underlay", n)
	}
}

// syncBuffer is a log sink tests read while the agent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPoolOverlapSaid: a network's subnet overlapping one of the node's
// routes is said in the log, naming both, and is not routed unreachable.
func TestPoolOverlapSaid(t *testing.T) {
	m := newFakeManager(t)
	var logs syncBuffer
	cfg := testConfig(t, m, newFakeDriver("docker"))
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	fo := &fakeOverlay{taken: []ipam.Taken{{Prefix: netip.MustParsePrefix("10.240.7.0/24"), What: "a route of this node via eth1"}}}
	a := runOverlayAgentWith(t, m, cfg, fo)
	nm := twoNodeMap(a.NodeID())
	m.update(func() { m.netmap = nm })
	waitFor(t, "the overlap in the log", func() bool {
		l := logs.String()
		return strings.Contains(l, "overlaps this node's addresses") && strings.Contains(l, "10.240.7.0/24") && strings.Contains(l, "eth1")
	})
	waitFor(t, "the overlay applied without the subnet's route", func() bool {
		d, n := fo.last()
		return n > 0 && len(d.Subnets) == 0 && len(d.Networks) == 1
	})
}

// TestPoolOverResolverNotRouted: a network's subnet holding the node's
// resolver (as the pool 10.240.0.0/12's last network holds 10.255.255.53
// on some machines) is not routed unreachable, which would cut the node's
// DNS; a subnet apart from it is.
func TestPoolOverResolverNotRouted(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 10.255.255.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		subnet, mine, peer string
		routed             bool
	}{{"10.255.192.0/18", "10.255.193.0/24", "10.255.194.0/24", false}, {"10.240.0.0/18", "10.240.1.0/24", "10.240.2.0/24", true}} {
		fo := &fakeOverlay{}
		n := &nodeOverlay{a: &Agent{log: slog.New(slog.DiscardHandler), nodeID: "n1"}, checked: map[netip.Prefix]bool{}, overlaps: map[netip.Prefix]bool{}, resolvConf: conf}
		n.a.newOverlay = func(netip.Addr) (kernelOverlay, error) { return fo, nil }
		nm := twoNodeMap("n1")
		nm.Networks[0].Subnet, nm.Networks[0].Slices = tc.subnet, map[string]string{"n1": tc.mine, "n2": tc.peer}
		n.apply(context.Background(), &nm)
		if d, k := fo.last(); k != 1 || (len(d.Subnets) == 1) != tc.routed {
			t.Errorf("subnet %s: applied %d times with subnets %v, want routed %v", tc.subnet, k, d.Subnets, tc.routed)
		}
	}
}

// TestLocalPortsFromMap: only local-mode services with a serving replica
// on this node get the kernel's DNAT of their published ingress ports; a
// loopback host address stays the proxy's, a specific one narrows it.
func TestLocalPortsFromMap(t *testing.T) {
	ep := func(node, addr string) api.MapEndpoint {
		return api.MapEndpoint{NodeID: node, Addresses: map[string]string{"app_default": addr}}
	}
	svc := func(name, mesh string, ports []api.MapPort, eps ...api.MapEndpoint) api.MapService {
		return api.MapService{App: "app", Name: name, Mesh: mesh, Networks: []api.MapAttachment{{Network: "app_default"}}, Ports: ports, Endpoints: eps}
	}
	m := &api.NetworkMap{Services: []api.MapService{
		svc("local", types.MeshLocal, []api.MapPort{{Target: 80, Published: 8080, Protocol: "tcp"}, {Target: 81, Published: 8081, Protocol: "tcp", Mode: types.PortHost}},
			ep("n1", "10.240.1.3"), ep("n1", "10.240.1.2"), ep("n2", "10.240.2.2")),
		svc("lo", types.MeshLocal, []api.MapPort{{Target: 80, Published: 9090, Protocol: "tcp", HostIP: "127.0.0.1"}}, ep("n1", "10.240.1.4")),
		svc("one", types.MeshLocal, []api.MapPort{{Target: 53, Published: 5353, Protocol: "udp", HostIP: "192.0.2.1"}}, ep("n1", "10.240.1.5")),
		svc("elsewhere", types.MeshLocal, []api.MapPort{{Target: 80, Published: 7070, Protocol: "tcp"}}, ep("n2", "10.240.2.3")),
		svc("all", "", []api.MapPort{{Target: 80, Published: 6060, Protocol: "tcp"}}, ep("n1", "10.240.1.6")),
	}}
	a := netip.MustParseAddr
	want := []overlay.LocalPort{
		{Proto: "tcp", Published: 8080, Target: 80, Backends: []netip.Addr{a("10.240.1.2"), a("10.240.1.3")}},
		{Proto: "udp", Dst: a("192.0.2.1"), Published: 5353, Target: 53, Backends: []netip.Addr{a("10.240.1.5")}},
	}
	if got := localPortsFromMap(m, "n1"); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}
