package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/testkit"
)

// startUpstream is a resolver on loopback that answers every A question
// with 192.0.2.1: the tests' upstream, so no question leaves the machine.
func startUpstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.1")
		m.Answer = append(m.Answer, rr)
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// loopbackNet is a random 127.X.0.0/16 for one test, so parallel runs (and
// other tests on the machine) do not meet; its node slice is 127.X.Y.0/24.
func loopbackNet() (subnet, slice string, base [3]byte) {
	x, y := byte(100+rand.IntN(100)), byte(1+rand.IntN(200))
	return fmt.Sprintf("127.%d.0.0/16", x), fmt.Sprintf("127.%d.%d.0/24", x, y), [3]byte{127, x, y}
}

func addrIn(base [3]byte, host byte) string {
	return netip.AddrFrom4([4]byte{base[0], base[1], base[2], host}).String()
}

// askFrom sends one question to server from the loopback address from.
func askFrom(t *testing.T, server, from, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}}
	resp, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("ask %s from %s: %v", name, from, err)
	}
	return resp
}

func answerA(resp *dns.Msg) []string {
	var out []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// echoServer accepts on addr and echoes each line back.
func echoServer(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln
}

func freeTCPPort(t *testing.T) uint16 {
	t.Helper()
	return uint16(testkit.FreePort(t)) // free on every address: the mesh listens on the wildcard
}

// newTestMesh is the mesh of an agent on node n1 with upstream up, its DNS
// sockets on port 0 of each gateway.
func newTestMesh(t *testing.T, up string) *mesh {
	t.Helper()
	a := &Agent{nodeID: "n1", log: slog.New(slog.DiscardHandler), cfg: Config{DNSUpstreams: []string{up}, Overlay: true}}
	ctx, cancel := context.WithCancel(context.Background())
	m, err := newMesh(ctx, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); m.close() })
	return m
}

// TestMeshServes applies a map to a real mesh: DNS opens on this node's
// gateway and answers the service's VIP to a replica and to a container
// not serving yet, forwards other names to the upstream, and the published
// port relays to the replica; a map without the node's slice and the
// service closes both.
func TestMeshServes(t *testing.T) {
	subnet, slice, base := loopbackNet()
	m := newTestMesh(t, startUpstream(t))
	backend := echoServer(t, addrIn(base, 5)+":0")
	target := uint16(backend.Addr().(*net.TCPAddr).Port)
	published := freeTCPPort(t)
	nm := &api.NetworkMap{
		Networks: []api.MapNetwork{{Key: "shop_default", App: "shop", Subnet: subnet, Slices: map[string]string{"n1": slice}}},
		Services: []api.MapService{{
			App: "shop", Name: "web",
			Networks:  []api.MapAttachment{{Network: "shop_default", VIP: addrIn([3]byte{base[0], base[1], 0}, 2)}},
			Ports:     []api.MapPort{{Target: target, Published: published, Protocol: "tcp"}},
			Endpoints: []api.MapEndpoint{{TaskID: "t1", Slot: 1, NodeID: "n1", Addresses: map[string]string{"shop_default": addrIn(base, 5)}}},
		}},
	}
	m.apply(context.Background(), nm)
	// The port was free a moment ago; on a busy machine another process
	// may take it first (an outgoing connection's ephemeral port): then
	// the mesh cannot open it, and another is tried.
	for try := 0; m.proxy.Addr("tcp", netip.AddrPortFrom(netip.IPv4Unspecified(), published)) == nil; try++ {
		if try == 5 {
			t.Fatalf("the mesh opened none of 5 published ports")
		}
		published = freeTCPPort(t)
		nm.Services[0].Ports[0].Published = published
		m.apply(context.Background(), nm)
	}
	gw := netip.MustParseAddr(addrIn(base, 1))
	srv := m.dnsAddr(gw)
	if srv == nil {
		t.Fatalf("no DNS server on the gateway %s", gw)
	}
	vip := nm.Services[0].Networks[0].VIP
	for _, tc := range []struct{ from, name, want string }{
		{addrIn(base, 5), "web.", vip},
		{addrIn(base, 9), "web.", vip}, // by its subnet: starting, not in the map
		{addrIn(base, 5), "shop-web-1.", addrIn(base, 5)},
		{addrIn(base, 5), "example.test.", "192.0.2.1"},
	} {
		if got := answerA(askFrom(t, srv.String(), tc.from, tc.name)); len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s from %s = %v, want %s", tc.name, tc.from, got, tc.want)
		}
	}
	if resp := askFrom(t, srv.String(), "127.0.0.1", "web."); resp.Rcode != dns.RcodeNameError {
		t.Errorf("web. from an address on no network: rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}

	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(published)), 5*time.Second)
	if err != nil {
		t.Fatalf("dial the published port: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(c, "hello")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "hello\n" {
		t.Errorf("through the mesh: %q, %v", line, err)
	}
	c.Close()

	m.apply(context.Background(), &api.NetworkMap{})
	if m.dnsAddr(gw) != nil {
		t.Error("the DNS server still runs after the node's slice left the map")
	}
	if m.proxy.Addr("tcp", netip.AddrPortFrom(netip.IPv4Unspecified(), published)) != nil {
		t.Error("the published port is still routed after its service left the map")
	}
}

// TestMeshConfigure: a container's resolver is this node's gateway of its
// first network; an exec task gets its app's services' VIPs, its own env
// winning.
func TestMeshConfigure(t *testing.T) {
	m := newTestMesh(t, startUpstream(t))
	m.latest.Store(testMap())
	subnet, slice, base := loopbackNet()
	res := &api.AppResources{Slices: map[string]string{"front": slice, "back": "10.240.65.0/24"}}
	svc := &types.Service{Name: "web", Networks: []types.NetworkAttachment{{Name: "front"}, {Name: "back"}}}
	cfg := (&loop{a: &Agent{mesh: m}, desired: &api.NodeTasks{Apps: map[string]*api.AppResources{"shop": res}}}).taskConfig(
		&types.Task{ID: "t", App: "shop", Service: "web"}, svc)
	gw := addrIn(base, 1)
	if len(cfg.DNS) != 1 || cfg.DNS[0] != gw {
		t.Errorf("dns %v, want [%s]", cfg.DNS, gw)
	}
	// The task's resolver answers before the map has the node's slice,
	// and goes once the map had it and then no longer has it.
	served := func() bool { return m.dnsAddr(netip.MustParseAddr(gw)) != nil }
	if !served() {
		t.Error("no DNS on the task's resolver before the map has the slice")
	}
	m.apply(context.Background(), &api.NetworkMap{})
	if !served() {
		t.Error("a map that does not have the slice yet stopped the task's resolver")
	}
	m.apply(context.Background(), &api.NetworkMap{Networks: []api.MapNetwork{{Key: "shop_front", Subnet: subnet, Slices: map[string]string{"n1": slice}}}})
	m.apply(context.Background(), &api.NetworkMap{})
	if served() {
		t.Error("the resolver still runs after the map dropped the slice")
	}
	m.latest.Store(testMap())
	exe := &types.Service{Name: "job", Driver: types.DriverExec, Env: map[string]string{"BERTH_SERVICE_API_ADDR": "mine"}}
	cfg = &driver.TaskConfig{Task: &types.Task{App: "shop"}, Service: exe}
	m.configure(cfg, nil)
	want := map[string]string{"BERTH_SERVICE_WEB_ADDR": "10.240.0.2", "BERTH_SERVICE_API_ADDR": "mine"}
	if fmt.Sprint(cfg.Service.Env) != fmt.Sprint(want) {
		t.Errorf("exec env %v, want %v", cfg.Service.Env, want)
	}
	if len(exe.Env) != 1 {
		t.Errorf("the desired spec was changed: %v", exe.Env)
	}
}

// TestMeshTakenPort: a task whose ingress port a process holds on the node
// is refused with the holder's name; one the mesh itself listens on, or a
// host-mode one (Docker's), is not.
func TestMeshTakenPort(t *testing.T) {
	m := newTestMesh(t, startUpstream(t))
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := uint16(held.Addr().(*net.TCPAddr).Port)
	svc := &types.Service{Name: "web", Ports: []types.Port{{Target: 80, Published: port, Protocol: "tcp", HostIP: "127.0.0.1"}}}
	err = m.takenPort(svc)
	want := "port 127.0.0.1:" + strconv.Itoa(int(port)) + "/tcp is taken by process"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("takenPort = %v, want %q", err, want)
	}
	host := &types.Service{Name: "web", Ports: []types.Port{{Target: 80, Published: port, Protocol: "tcp", Mode: types.PortHost}}}
	if err := m.takenPort(host); err != nil {
		t.Errorf("a host-mode port is Docker's to check: %v", err)
	}
	held.Close()
	free := freeTCPPort(t)
	svc.Ports[0].Published = free
	m.apply(context.Background(), &api.NetworkMap{Services: []api.MapService{{App: "a", Name: "web",
		Ports: []api.MapPort{{Target: 80, Published: free, Protocol: "tcp"}}}}})
	if err := m.takenPort(svc); err != nil {
		t.Errorf("the mesh's own port: %v", err)
	}
}

// TestMeshWithdrawsAtOnce: a map as the watch receives it takes the
// replicas it no longer lists out of DNS at once, before the overlay and
// the full apply; it adds none; an older map applied after it does not
// bring a withdrawn replica back, and a later map that lists it again does.
func TestMeshWithdrawsAtOnce(t *testing.T) {
	subnet, slice, base := loopbackNet()
	m := newTestMesh(t, startUpstream(t))
	mapOf := func(slots ...int) *api.NetworkMap {
		svc := api.MapService{App: "shop", Name: "web",
			Networks: []api.MapAttachment{{Network: "shop_default", VIP: addrIn([3]byte{base[0], base[1], 0}, 2)}}}
		for _, s := range slots {
			svc.Endpoints = append(svc.Endpoints, api.MapEndpoint{TaskID: fmt.Sprintf("t%d", s), Slot: s, NodeID: "n1",
				Addresses: map[string]string{"shop_default": addrIn(base, byte(4+s))}})
		}
		return &api.NetworkMap{
			Networks: []api.MapNetwork{{Key: "shop_default", App: "shop", Subnet: subnet, Slices: map[string]string{"n1": slice}}},
			Services: []api.MapService{svc},
		}
	}
	ctx := context.Background()
	gw := netip.MustParseAddr(addrIn(base, 1))
	answers := func(slot int) bool {
		t.Helper()
		srv := m.dnsAddr(gw)
		if srv == nil {
			t.Fatalf("no DNS server on the gateway %s", gw)
		}
		got := answerA(askFrom(t, srv.String(), addrIn(base, 5), fmt.Sprintf("shop-web-%d.", slot)))
		return slices.Contains(got, addrIn(base, byte(4+slot)))
	}
	expect := func(step string, want map[int]bool) {
		t.Helper()
		for slot, w := range want {
			if got := answers(slot); got != w {
				t.Errorf("%s: replica %d answered %v, want %v", step, slot, got, w)
			}
		}
	}
	old := mapOf(1, 2)
	m.apply(ctx, old)
	expect("applied", map[int]bool{1: true, 2: true})
	next := mapOf(1, 3) // 2 is stopping, 3 is new
	m.withdraw(ctx, next)
	expect("received", map[int]bool{1: true, 2: false, 3: false})
	m.apply(ctx, old)
	expect("an older map applied late", map[int]bool{1: true, 2: false})
	m.apply(ctx, next)
	expect("applied", map[int]bool{1: true, 2: false, 3: true})
	m.withdraw(ctx, mapOf(1, 2, 3))
	m.apply(ctx, mapOf(1, 2, 3))
	expect("listed again", map[int]bool{1: true, 2: true, 3: true})
}
