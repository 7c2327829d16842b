package netmesh

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// tcpBackend listens on ip:0 and, per connection, says its name, then
// echoes. With proxy set it reads a PROXY header first and says the
// client address it carried instead of its name.
func tcpBackend(t *testing.T, ip, name string, proxy bool) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	if proxy {
		ln = &proxyproto.Listener{Listener: ln}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				hello := name
				if proxy {
					hello = c.RemoteAddr().String()
				}
				if _, err := fmt.Fprintf(c, "%s\n", hello); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// refusingAddr is an address on ip where nothing listens.
func refusingAddr(t *testing.T, ip, proto string) netip.AddrPort {
	t.Helper()
	var addr string
	if proto == "tcp" {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		_ = ln.Close()
	} else {
		pc, err := net.ListenPacket("udp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr().String()
		_ = pc.Close()
	}
	return netip.MustParseAddrPort(addr)
}

var listenAny = netip.MustParseAddrPort("127.0.0.1:0")

func startProxy(t *testing.T, cfg ProxyConfig, r Route) (*Proxy, string) {
	t.Helper()
	p := NewProxy(cfg)
	t.Cleanup(p.Close)
	if err := p.Apply(context.Background(), []Route{r}); err != nil {
		t.Fatal(err)
	}
	return p, p.Addr(r.Proto, r.Listen).String()
}

// hello connects through the proxy and returns the backend's first line
// and the connection, with a deadline.
func hello(t *testing.T, addr string) (string, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read the backend's hello: %v", err)
	}
	return strings.TrimSpace(line), c
}

func TestTCPProxyPicks(t *testing.T) {
	a := tcpBackend(t, "127.0.0.2", "a", false)
	b := tcpBackend(t, "127.0.0.3", "b", false)
	c := tcpBackend(t, "127.0.0.3", "c", false)
	refused := refusingAddr(t, "127.0.0.4", "tcp")
	tests := []struct {
		name     string
		backends []Backend
		local    bool
		conns    int
		want     map[string]int
	}{
		{"local first", []Backend{{b, false}, {a, true}}, false, 4, map[string]int{"a": 4}},
		{"least connections over remote", []Backend{{b, false}, {c, false}}, false, 4, map[string]int{"b": 2, "c": 2}},
		{"a refusing backend is skipped", []Backend{{refused, true}, {b, false}}, false, 3, map[string]int{"b": 3}},
		{"local only", []Backend{{a, true}, {b, false}}, true, 3, map[string]int{"a": 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startProxy(t, ProxyConfig{}, Route{Proto: "tcp", Listen: listenAny, Backends: tc.backends, LocalOnly: tc.local})
			got := map[string]int{}
			for range tc.conns { // held open, so least connections counts them
				name, _ := hello(t, addr)
				got[name]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("connections went to %v, want %v", got, tc.want)
			}
		})
	}
}

// With no backend left at all the client is closed at once, not held.
func TestTCPProxyNoBackend(t *testing.T) {
	_, addr := startProxy(t, ProxyConfig{}, Route{Proto: "tcp", Listen: listenAny,
		Backends: []Backend{{refusingAddr(t, "127.0.0.4", "tcp"), true}}})
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read %d bytes, %v: want the connection closed", n, err)
	}
}

// A client that half-closes still gets the whole answer: the backend sees
// EOF, answers and closes.
func TestTCPProxyHalfClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c) // to the client's EOF
		fmt.Fprintf(c, "got %d bytes", n)
	}()
	_, addr := startProxy(t, ProxyConfig{}, Route{Proto: "tcp", Listen: listenAny,
		Backends: []Backend{{netip.MustParseAddrPort(ln.Addr().String()), true}}})
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(make([]byte, 100000)); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got 100000 bytes" {
		t.Fatalf("answer %q, %v: want \"got 100000 bytes\" then EOF", got, err)
	}
}

// With ProxyProtocol the backend sees the client's own address.
func TestTCPProxyProtocol(t *testing.T) {
	be := tcpBackend(t, "127.0.0.2", "", true)
	_, addr := startProxy(t, ProxyConfig{}, Route{Proto: "tcp", Listen: listenAny, ProxyProtocol: true,
		Backends: []Backend{{be, true}}})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(line); got != c.LocalAddr().String() {
		t.Fatalf("backend saw the client as %s, want %s", got, c.LocalAddr())
	}
}

// A backend that leaves the view takes no new connections; its open one
// keeps working until the drain deadline, and is closed then.
func TestTCPProxyDrain(t *testing.T) {
	a := tcpBackend(t, "127.0.0.2", "a", false)
	b := tcpBackend(t, "127.0.0.3", "b", false)
	const drain = 300 * time.Millisecond
	p, addr := startProxy(t, ProxyConfig{DrainTimeout: drain}, Route{Proto: "tcp", Listen: listenAny,
		Backends: []Backend{{a, true}}})
	name, old := hello(t, addr)
	if name != "a" {
		t.Fatalf("first connection went to %s, want a", name)
	}
	removed := time.Now()
	if err := p.Apply(context.Background(), []Route{{Proto: "tcp", Listen: listenAny, Backends: []Backend{{b, true}}}}); err != nil {
		t.Fatal(err)
	}
	if name, _ := hello(t, addr); name != "b" {
		t.Fatalf("a connection after the removal went to %s, want b", name)
	}
	r := bufio.NewReader(old)
	if _, err := old.Write([]byte("still\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "still\n" {
		t.Fatalf("the draining connection answered %q, %v: want its echo", line, err)
	}
	if _, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("the draining connection was not closed: %v", err)
	}
	if took := time.Since(removed); took < drain {
		t.Fatalf("closed after %v, before the drain deadline %v", took, drain)
	}
}

// With Transparent the backend sees the client's address with no header;
// without it, the proxy's.
func TestTCPProxyTransparent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
	be := netip.MustParseAddrPort(ln.Addr().String())
	for _, transparent := range []bool{false, true} {
		_, addr := startProxy(t, ProxyConfig{}, Route{Proto: "tcp", Listen: listenAny, Transparent: transparent, Backends: []Backend{{be, true}}})
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(line) == "127.0.0.9"; got != transparent {
			t.Fatalf("transparent %v: the backend saw %s", transparent, strings.TrimSpace(line))
		}
	}
}
