package netmesh

import (
	"bufio"
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// udpBackend answers each datagram with "NAME:" and the datagram; with
// proxy set, with the client address the datagram's PROXY header carried.
func udpBackend(t *testing.T, ip, name string, proxy bool) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p := buf[:n]
			if proxy {
				h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(p)))
				if err != nil {
					p = []byte("no header: " + err.Error())
				} else {
					p = []byte(h.SourceAddr.String())
				}
			}
			_, _ = pc.WriteTo(append([]byte(name+":"), p...), from)
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// udpClient is a socket on ip that sends to the proxy.
func udpClient(t *testing.T, ip, proxy string) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// exchange sends p and waits up to wait for the answer; "" if none came.
func exchange(t *testing.T, c *net.UDPConn, p string, wait time.Duration) string {
	t.Helper()
	if _, err := c.Write([]byte(p)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, maxDatagram)
	n, err := c.Read(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestUDPProxy(t *testing.T) {
	a := udpBackend(t, "127.0.0.2", "a", false)
	b := udpBackend(t, "127.0.0.3", "b", false)
	refused := refusingAddr(t, "127.0.0.4", "udp")
	tests := []struct {
		name     string
		backends []Backend
		want     string
	}{
		{"local first", []Backend{{b, false}, {a, true}}, "a:ping"},
		{"a refusing backend is skipped, the datagram resent", []Backend{{refused, true}, {b, false}}, "b:ping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startProxy(t, ProxyConfig{}, Route{Proto: "udp", Listen: listenAny, Backends: tc.backends})
			c := udpClient(t, "127.0.0.9", addr)
			if got := exchange(t, c, "ping", 10*time.Second); got != tc.want {
				t.Fatalf("answer %q, want %q", got, tc.want)
			}
			if got := exchange(t, c, "ping", 10*time.Second); got != tc.want {
				t.Fatalf("second answer %q, want %q from the same flow", got, tc.want)
			}
		})
	}
}

func TestUDPProxyProtocol(t *testing.T) {
	be := udpBackend(t, "127.0.0.2", "a", true)
	_, addr := startProxy(t, ProxyConfig{}, Route{Proto: "udp", Listen: listenAny, ProxyProtocol: true, Backends: []Backend{{be, true}}})
	c := udpClient(t, "127.0.0.9", addr)
	if got, want := exchange(t, c, "ping", 10*time.Second), "a:"+c.LocalAddr().String(); got != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
}

// Flows end when idle, and there are never more than MaxUDPFlows.
func TestUDPProxyFlowsBounded(t *testing.T) {
	be := udpBackend(t, "127.0.0.2", "a", false)
	idle := time.Second // long enough that c1 is not idle while c2 and c3 ask, on a busy machine
	p, addr := startProxy(t, ProxyConfig{MaxUDPFlows: 2, UDPIdleTimeout: idle}, Route{Proto: "udp", Listen: listenAny, Backends: []Backend{{be, true}}})
	c1, c2, c3 := udpClient(t, "127.0.0.9", addr), udpClient(t, "127.0.0.10", addr), udpClient(t, "127.0.0.11", addr)
	for _, c := range []*net.UDPConn{c1, c2} {
		if got := exchange(t, c, "x", 10*time.Second); got != "a:x" {
			t.Fatalf("answer %q, want a:x", got)
		}
	}
	if got := exchange(t, c3, "x", idle/10); got != "" {
		t.Fatalf("a third flow past the limit of 2 was answered: %q", got)
	}
	route := p.routes[Route{Proto: "udp", Listen: listenAny}.key()].(*udpRoute)
	deadline := time.Now().Add(10 * time.Second)
	for flows(route) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d flows still open long after the idle timeout", flows(route))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := exchange(t, c3, "x", 10*time.Second); got != "a:x" {
		t.Fatalf("after the idle flows ended: %q, want a:x", got)
	}
}

func flows(u *udpRoute) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.flows)
}

// A UDP backend that leaves the view keeps its flow until the drain
// deadline; new clients go to the backend that replaced it.
func TestUDPProxyDrain(t *testing.T) {
	a := udpBackend(t, "127.0.0.2", "a", false)
	b := udpBackend(t, "127.0.0.3", "b", false)
	p, addr := startProxy(t, ProxyConfig{DrainTimeout: 300 * time.Millisecond}, Route{Proto: "udp", Listen: listenAny, Backends: []Backend{{a, true}}})
	old := udpClient(t, "127.0.0.9", addr)
	if got := exchange(t, old, "x", 10*time.Second); got != "a:x" {
		t.Fatalf("answer %q, want a:x", got)
	}
	if err := p.Apply(t.Context(), []Route{{Proto: "udp", Listen: listenAny, Backends: []Backend{{b, true}}}}); err != nil {
		t.Fatal(err)
	}
	if got := exchange(t, old, "y", 10*time.Second); got != "a:y" {
		t.Fatalf("the draining flow answered %q, want a:y", got)
	}
	if got := exchange(t, udpClient(t, "127.0.0.10", addr), "x", 10*time.Second); got != "b:x" {
		t.Fatalf("a new client got %q, want b:x", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := exchange(t, old, "z", 100*time.Millisecond); got == "b:z" {
			break // the drained flow ended; the client's next datagram started a new one
		}
		if time.Now().After(deadline) {
			t.Fatal("the draining flow still went to a long after the drain deadline")
		}
	}
}

// TestUDPProxyProtocolWildcard: on a wildcard listener (dual-stack, as the
// mesh's published ports are) each datagram still carries the client's
// address in a PROXY v2 header.
func TestUDPProxyProtocolWildcard(t *testing.T) {
	be := udpBackend(t, "127.0.0.2", "a", true)
	_, addr := startProxy(t, ProxyConfig{}, Route{Proto: "udp", Listen: netip.MustParseAddrPort("0.0.0.0:0"), ProxyProtocol: true, Backends: []Backend{{be, true}}})
	c := udpClient(t, "127.0.0.9", addr)
	if got, want := exchange(t, c, "ping", 10*time.Second), "a:"+c.LocalAddr().String(); got != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
}
