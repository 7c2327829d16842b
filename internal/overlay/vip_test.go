package overlay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/ipam"
)

const vipPort = 7100

// addReplica puts one more container namespace on host h's bridge of
// network j (0: the first), at address a of the slice.
func (w *world) addReplica(h *host, j int, name string, a netip.Addr) ctr {
	first := h.ctrs[w.networkID(j)]
	c := ctr{ns: w.prefix + "-" + name, slice: first.slice, addr: a}
	port := "v" + name
	mtu, _ := h.ov.MTU()
	w.addNS(c.ns)
	w.ip("-n", h.ns, "link", "add", port, "mtu", fmt.Sprint(mtu), "type", "veth", "peer", "name", "eth0", "netns", c.ns)
	w.ip("-n", h.ns, "link", "set", port, "master", fmt.Sprintf("ctr%d", j), "up")
	w.ip("-n", c.ns, "addr", "add", netip.PrefixFrom(a, c.slice.Bits()).String(), "dev", "eth0")
	w.ip("-n", c.ns, "link", "set", "eth0", "up")
	w.ip("-n", c.ns, "route", "add", "default", "via", ipam.Gateway(c.slice).String())
	return c
}

func (w *world) networkID(j int) string { return w.pool.NetworkIDs()[j] }

// serveWho answers each TCP connection, and each UDP datagram, on port
// vipPort of c with "ADDR SEEN": the replica's own address and the
// client's address as the replica saw it.
func (w *world) serveWho(c ctr) {
	w.t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	at := netip.AddrPortFrom(c.addr, vipPort).String()
	err := inNS(c.ns, func() (err error) {
		if ln, err = net.Listen("tcp", at); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", at)
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(conn, "%s %s\n", c.addr, conn.RemoteAddr().(*net.TCPAddr).IP)
			conn.Close()
		}
	}()
	go func() {
		b := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(c.addr.String()), from)
		}
	}()
}

// vipWorld: two hosts on network a; the client on host 1 (its .2), replica
// A on host 2 (its .2) and replica B on host 1 beside the client (.3),
// and the VIP of service web. Host 1 has no default route: the pool is
// routed unreachable, the VIP to its network's bridge.
func vipWorld(t *testing.T) (w *world, client, a, b ctr, vip netip.Addr) {
	w = newWorld(t, 2, "a")
	h1 := w.hosts[0]
	client, a = h1.ctrs["a"], w.hosts[1].ctrs["a"]
	b = w.addReplica(h1, 0, "rb", client.addr.Next())
	vip, err := w.pool.AddVIP("a", "web")
	if err != nil {
		t.Fatal(err)
	}
	w.applyAll()
	w.serveWho(a)
	w.serveWho(b)
	return w, client, a, b, vip
}

func (w *world) applyVIP(vip netip.Addr, backends ...ctr) Changes {
	w.t.Helper()
	d := w.desired(0, 1)
	for _, n := range d.Networks {
		d.Subnets = append(d.Subnets, n.Subnet)
	}
	v := VIP{Addr: vip, Subnet: d.Networks[0].Subnet, Ports: []VIPPort{{"tcp", vipPort}, {"udp", vipPort}}}
	for _, c := range backends {
		v.Backends = append(v.Backends, c.addr)
	}
	d.VIPs = []VIP{v}
	ch, err := w.hosts[0].ov.Apply(context.Background(), d)
	if err != nil {
		w.t.Fatalf("apply the VIP: %v", err)
	}
	return ch
}

// whoTCP connects from ns to vip and returns "REPLICA SEEN".
func whoTCP(ns string, vip netip.Addr) (string, error) {
	return call(ns, netip.AddrPortFrom(vip, vipPort), 2*time.Second)
}

// spread connects n times and counts the replicas that answered.
func spread(t *testing.T, ns string, vip netip.Addr, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		who, err := whoTCP(ns, vip)
		if err != nil {
			t.Fatalf("connect to the VIP: %v", err)
		}
		got[strings.Fields(who)[0]]++
	}
	return got
}

// seenBy connects until replica r answers and returns where r saw the
// client.
func seenBy(t *testing.T, ns string, vip netip.Addr, r ctr) string {
	t.Helper()
	for range 200 {
		who, err := whoTCP(ns, vip)
		if f := strings.Fields(who); err == nil && f[0] == r.addr.String() {
			return f[1]
		}
	}
	t.Fatalf("replica %s never answered", r.addr)
	return ""
}

// TestVIPHairpin: a client DNATed to a replica on its own bridge gets its
// replies, the replica seeing the client's own address where bridged
// traffic passes iptables (br_netfilter, as Docker sets it) and the
// bridge's gateway where it does not.
func TestVIPHairpin(t *testing.T) {
	for _, tc := range []struct {
		nf   string
		seen func(client, gw netip.Addr) netip.Addr
	}{
		{"1", func(client, _ netip.Addr) netip.Addr { return client }},
		{"0", func(_, gw netip.Addr) netip.Addr { return gw }},
	} {
		t.Run("bridge-nf-call-iptables="+tc.nf, func(t *testing.T) {
			w, client, _, b, vip := vipWorld(t)
			if err := inNS(w.hosts[0].ns, func() error { return os.WriteFile(bridgeNFPath, []byte(tc.nf), 0o644) }); err != nil {
				t.Skipf("br_netfilter not settable here: %v", err)
			}
			w.applyVIP(vip, b)
			want := tc.seen(client.addr, ipam.Gateway(client.slice))
			if got := seenBy(t, client.ns, vip, b); got != want.String() {
				t.Errorf("replica beside the client saw it at %s, want %s", got, want)
			}
		})
	}
}

// TestVIPBalances: connections to the VIP reach both replicas (one on
// another host, seen with the client's own address; one on the client's
// bridge, the hairpin); a second Apply changes nothing; a replica taken
// out gets no new connection; with none the client is refused at once.
func TestVIPBalances(t *testing.T) {
	w, client, a, b, vip := vipWorld(t)
	w.applyVIP(vip, a, b)
	got := spread(t, client.ns, vip, 40)
	if got[a.addr.String()] == 0 || got[b.addr.String()] == 0 {
		t.Fatalf("40 connections reached %v, want both replicas", got)
	}
	if ch := w.applyVIP(vip, a, b); ch != (Changes{}) {
		t.Errorf("second Apply = %+v, want no changes (rules read back differ?)", ch)
	}
	// A restarted agent's new Overlay takes the chains over as they are.
	restarted, err := New(w.hosts[0].ov.cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.hosts[0].ov = restarted
	if ch := w.applyVIP(vip, a, b); ch != (Changes{}) {
		t.Errorf("Apply after a restart = %+v, want no changes", ch)
	}
	if seen := seenBy(t, client.ns, vip, a); seen != client.addr.String() {
		t.Errorf("replica on another host saw the client at %s, want %s", seen, client.addr)
	}

	w.applyVIP(vip, b)
	if got := spread(t, client.ns, vip, 20); got[b.addr.String()] != 20 {
		t.Errorf("after replica A left, 20 connections reached %v, want B only", got)
	}
	// B reaches the VIP, that is itself.
	if who, err := whoTCP(b.ns, vip); err != nil || !strings.HasPrefix(who, b.addr.String()) {
		t.Errorf("replica to its own VIP: %q, %v", who, err)
	}

	w.applyVIP(vip)
	start := time.Now()
	_, err = whoTCP(client.ns, vip)
	if !errors.Is(err, syscall.ECONNREFUSED) || time.Since(start) > time.Second {
		t.Errorf("no replica: %v after %s, want refused at once", err, time.Since(start))
	}
}

// TestVIPFromHost: the node's own processes reach the VIP, to a replica on
// another host (from the node's VTEP address) and to one of its own.
func TestVIPFromHost(t *testing.T) {
	w, _, a, b, vip := vipWorld(t)
	h1 := w.hosts[0].ns
	for _, r := range []ctr{a, b} {
		w.applyVIP(vip, r)
		who, err := whoTCP(h1, vip)
		if err != nil || !strings.HasPrefix(who, r.addr.String()) {
			t.Errorf("host to VIP with replica %s: %q, %v", r.addr, who, err)
		}
	}
}

// TestVIPUDPMovesOff: a UDP flow to the VIP moves to another replica once
// its replica leaves, though the client keeps sending from one socket
// (the conntrack entry would otherwise hold it on the old replica).
func TestVIPUDPMovesOff(t *testing.T) {
	w, client, a, b, vip := vipWorld(t)
	w.applyVIP(vip, a)
	var conn net.Conn
	if err := inNS(client.ns, func() (err error) {
		conn, err = net.Dial("udp", netip.AddrPortFrom(vip, vipPort).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func() string {
		b := make([]byte, 64)
		for range 20 {
			_, _ = conn.Write([]byte("who"))
			_ = conn.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
			if n, err := conn.Read(b); err == nil {
				return string(b[:n])
			}
		}
		return ""
	}
	if got := ask(); got != a.addr.String() {
		t.Fatalf("UDP to the VIP answered by %q, want %s", got, a.addr)
	}
	w.applyVIP(vip, b)
	if got := ask(); got != b.addr.String() {
		t.Fatalf("after replica A left, UDP answered by %q, want %s", got, b.addr)
	}
}

// TestVIPIsolated: a container of another network does not reach the VIP.
func TestVIPIsolated(t *testing.T) {
	w := newWorld(t, 1, "a", "b")
	h := w.hosts[0]
	vip, _ := w.pool.AddVIP("a", "web")
	a, other := h.ctrs["a"], h.ctrs["b"]
	w.serveWho(a)
	d := w.desired(0)
	for _, n := range d.Networks {
		d.Subnets = append(d.Subnets, n.Subnet)
	}
	for _, n := range d.Networks {
		if n.Slice == a.slice {
			d.VIPs = []VIP{{Addr: vip, Subnet: n.Subnet, Backends: []netip.Addr{a.addr}}}
		}
	}
	if _, err := h.ov.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if who, err := whoTCP(a.ns, vip); err != nil {
		t.Fatalf("a to its own network's VIP (whole address): %q, %v", who, err)
	}
	if who, err := whoTCP(other.ns, vip); err == nil {
		t.Fatalf("a container of network b reached a's VIP: %q", who)
	}
}

// TestProbability: as `iptables -S` prints the kernel's value back (seen
// on this machine for 1/3, 1/5 and 1/7), so converged chains compare equal.
func TestProbability(t *testing.T) {
	for p, want := range map[float64]string{1.0 / 2: "0.50000000000", 1.0 / 3: "0.33333333349", 1.0 / 7: "0.14285714272", 1.0 / 5: "0.20000000019"} {
		if got := probability(p); got != want {
			t.Errorf("probability(%v) = %s, want %s", p, got, want)
		}
	}
}

// TestHostReachesRemoteContainers: the node's own processes (the mesh's
// proxy) reach containers on another node on each of two networks: from
// the node's VTEP on that network, whichever address the kernel picked.
func TestHostReachesRemoteContainers(t *testing.T) {
	w := newWorld(t, 2, "a", "b")
	w.applyAll()
	for _, id := range []string{"a", "b"} {
		c := w.hosts[1].ctrs[id]
		w.listen(c, port)
		got, err := reaches(w.hosts[0].ns, addrPort(c), 5*time.Second)
		if err != nil {
			t.Fatalf("host 1 to the container of %s on host 2: %v", id, err)
		}
		if want := ipam.VTEP(w.hosts[0].ctrs[id].slice).String(); got != want {
			t.Errorf("the container of %s saw host 1 at %s, want its VTEP %s", id, got, want)
		}
	}
}

// TestRoutesLeaveOutOwn: the routes the pool is checked against leave out
// the overlay's own (device, pool, VIPs, the slices' bridges), so a
// restarted agent does not find its own pool in the way.
func TestRoutesLeaveOutOwn(t *testing.T) {
	w, _, a, _, vip := vipWorld(t)
	w.applyVIP(vip, a)
	d := w.desired(0, 1)
	for _, n := range d.Networks {
		d.Subnets = append(d.Subnets, n.Subnet)
	}
	taken, err := w.hosts[0].ov.Routes(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range taken {
		if r.Prefix.Overlaps(ipam.DefaultPool) {
			t.Errorf("route %s (%s) is the overlay's own", r.Prefix, r.What)
		}
	}
	if err := ipam.CheckPool(ipam.DefaultPool, taken); err != nil {
		t.Errorf("CheckPool: %v", err)
	}
}
