package overlay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/ipam"
)

// A world is hosts made of network namespaces on a bridge of their own,
// as the local machine driver makes them: an underlay namespace holding
// the bridge, and per host a namespace with eth0 on it. Each host has, per
// network, a bridge with the slice's gateway and a "container" namespace
// on it at the slice's .2. The hosts' filters are set as Docker sets them
// (FORWARD dropped, what leaves a slice masqueraded), so the overlay's
// rules are needed. Traffic goes only between the world's namespaces.
type world struct {
	t      *testing.T
	prefix string
	ul     string
	pool   *ipam.Pool
	hosts  []*host
}

type host struct {
	ns       string
	underlay netip.Addr
	ov       *Overlay
	// ctrs maps a network ID to the host's container namespace on it.
	ctrs map[string]ctr
}

type ctr struct {
	ns    string
	slice netip.Prefix
	addr  netip.Addr
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	for _, bin := range []string{"ip", "bridge", "sysctl", "iptables", "iptables-restore", "iptables-save", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
}

// newWorld makes n hosts with a container on each of networks.
func newWorld(t *testing.T, n int, networks ...string) *world {
	needRoot(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	w := &world{t: t, prefix: "ovt" + hex.EncodeToString(b)}
	w.ul = w.prefix + "-ul"
	pool, err := ipam.New(ipam.V1Config()) // the layout these addresses were written for
	if err != nil {
		t.Fatal(err)
	}
	w.pool = pool
	w.addNS(w.ul)
	w.ip("-n", w.ul, "link", "add", "br0", "type", "bridge")
	w.ip("-n", w.ul, "link", "set", "br0", "up")
	for _, id := range networks {
		if _, err := pool.AddNetwork(id); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= n; i++ {
		w.addHost(i, networks)
	}
	return w
}

func (w *world) addNS(name string) {
	w.ip("netns", "add", name)
	w.t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	w.ip("-n", name, "link", "set", "lo", "up")
}

func (w *world) addHost(i int, networks []string) {
	h := &host{ns: fmt.Sprintf("%s-h%d", w.prefix, i), underlay: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), ctrs: map[string]ctr{}}
	w.addNS(h.ns)
	port := fmt.Sprintf("h%d", i)
	w.ip("-n", w.ul, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
	w.ip("-n", w.ul, "link", "set", port, "master", "br0", "up")
	w.ip("-n", h.ns, "addr", "add", h.underlay.String()+"/24", "dev", "eth0")
	w.ip("-n", h.ns, "link", "set", "eth0", "up")
	ov, err := New(Config{Underlay: h.underlay, NetNS: "/run/netns/" + h.ns})
	if err != nil {
		w.t.Fatal(err)
	}
	h.ov = ov
	mtu, err := ov.MTU()
	if err != nil {
		w.t.Fatal(err)
	}
	w.run(h.ns, "iptables", "-P", "FORWARD", "DROP")
	// A new namespace inherits the machine's forwarding (on, Docker's):
	// off, so the overlay must turn it on.
	w.run(h.ns, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	for j, id := range networks {
		slice, err := w.pool.AddNode(id, h.ns)
		if err != nil {
			w.t.Fatal(err)
		}
		c := ctr{ns: fmt.Sprintf("%s-c%d%d", w.prefix, i, j), slice: slice, addr: ipam.Gateway(slice).Next()}
		w.addContainer(h, c, fmt.Sprint(j), mtu)
		h.ctrs[id] = c
	}
	w.hosts = append(w.hosts, h)
}

// addContainer makes bridge ctrJ with the slice's gateway and namespace
// c.ns on it, its MTU the overlay's, as a Docker network would be.
func (w *world) addContainer(h *host, c ctr, j string, mtu int) {
	br, port, m := "ctr"+j, "vc"+j, fmt.Sprint(mtu)
	w.addNS(c.ns)
	w.ip("-n", h.ns, "link", "add", br, "type", "bridge")
	w.ip("-n", h.ns, "addr", "add", netip.PrefixFrom(ipam.Gateway(c.slice), c.slice.Bits()).String(), "dev", br)
	w.ip("-n", h.ns, "link", "set", br, "up")
	w.ip("-n", h.ns, "link", "add", port, "mtu", m, "type", "veth", "peer", "name", "eth0", "netns", c.ns)
	w.ip("-n", h.ns, "link", "set", port, "master", br, "up")
	w.ip("-n", c.ns, "link", "set", "eth0", "mtu", m)
	w.ip("-n", c.ns, "addr", "add", netip.PrefixFrom(c.addr, c.slice.Bits()).String(), "dev", "eth0")
	w.ip("-n", c.ns, "link", "set", "eth0", "up")
	w.ip("-n", c.ns, "route", "add", "default", "via", ipam.Gateway(c.slice).String())
	// Docker: what leaves the network's bridge for elsewhere is NATed.
	w.run(h.ns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", c.slice.String(), "!", "-o", br, "-j", "MASQUERADE")
	w.run(h.ns, "iptables", "-A", "FORWARD", "-i", br, "!", "-o", br, "-j", "ACCEPT")
}

// desired is host i's Desired state with the given peers (indexes).
func (w *world) desired(i int, peers ...int) Desired {
	var d Desired
	for id, c := range w.hosts[i].ctrs {
		subnet, _ := w.pool.Subnet(id)
		d.Networks = append(d.Networks, Network{Subnet: subnet, Slice: c.slice})
	}
	for _, p := range peers {
		peer := Peer{Underlay: w.hosts[p].underlay}
		for _, c := range w.hosts[p].ctrs {
			peer.Slices = append(peer.Slices, c.slice)
		}
		d.Peers = append(d.Peers, peer)
	}
	return d
}

// applyAll makes every host a peer of every other.
func (w *world) applyAll() {
	for i, h := range w.hosts {
		var peers []int
		for j := range w.hosts {
			if j != i {
				peers = append(peers, j)
			}
		}
		if _, err := h.ov.Apply(context.Background(), w.desired(i, peers...)); err != nil {
			w.t.Fatalf("apply on host %d: %v", i+1, err)
		}
	}
}

func (w *world) ip(args ...string) {
	w.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		w.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// run runs a command in namespace ns.
func (w *world) run(ns string, cmd ...string) string {
	w.t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + ns, "--"}, cmd...)...).CombinedOutput()
	if err != nil {
		w.t.Fatalf("%s in %s: %v: %s", strings.Join(cmd, " "), ns, err, out)
	}
	return string(out)
}

// inNS runs f on a thread in namespace ns. Sockets f makes stay there.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := inNamespace("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		errc <- f()
		if back() == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// listen starts a server in c's namespace that answers each connection
// with the address it came from, then copies the rest to io.Discard.
func (w *world) listen(c ctr, port int) net.Listener {
	w.t.Helper()
	var ln net.Listener
	err := inNS(c.ns, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(c.addr, uint16(port)).String())
		return err
	})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				fmt.Fprintf(conn, "%s\n", conn.RemoteAddr().(*net.TCPAddr).IP)
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	return ln
}

// call connects from namespace ns to addr and returns the first line the
// server sends (the address it saw the client at).
func call(ns string, addr netip.AddrPort, timeout time.Duration) (string, error) {
	var conn net.Conn
	err := inNS(ns, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr.String(), timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	b := make([]byte, 64)
	n, err := conn.Read(b)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b[:n])), nil
}

// reaches waits until a call from ns to addr returns, or the deadline.
func reaches(ns string, addr netip.AddrPort, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		got, err := call(ns, addr, time.Second)
		if err == nil || time.Now().After(deadline) {
			return got, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
