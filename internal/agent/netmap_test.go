package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"reflect"
	"strconv"
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
	fail := false
	m.read(func() {
		if m.failNetMap > 0 {
			m.failNetMap--
			fail = true
		}
	})
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

func (f *fakeOverlay) Routes(overlay.Desired) ([]ipam.Taken, error) { return nil, nil }

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
	noSlice := twoNodeMap("n1")
	delete(noSlice.Networks[0].Slices, "n1")
	badPeer := twoNodeMap("n1")
	badPeer.Nodes[1].Underlay = "nowhere"
	for _, tc := range []struct {
		name string
		m    api.NetworkMap
		want overlay.Desired
		bad  int
	}{
		{"two nodes", twoNodeMap("n1"), overlay.Desired{Networks: []overlay.Network{net}, Peers: []overlay.Peer{peer}, VIPs: []overlay.VIP{vip}}, 0},
		{"no slice here: nothing", noSlice, overlay.Desired{}, 0},
		{"peer without an address is left out", badPeer, overlay.Desired{Networks: []overlay.Network{net}, VIPs: []overlay.VIP{vip}}, 1},
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
