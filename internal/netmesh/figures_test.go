package netmesh

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestProxyFigures measures the TCP proxy against a direct connection on
// loopback: bytes/s on one stream (at most 1 GiB or 5 s) and the p50/p99
// of 2000 round trips of 64 bytes offered at 2000/s. It runs only with
// BERTH_NETMESH_FIGURES=1, as figures need a quiet machine:
//
//	BERTH_NETMESH_FIGURES=1 go test -count=1 -run TestProxyFigures -v ./internal/netmesh/
func TestProxyFigures(t *testing.T) {
	if os.Getenv("BERTH_NETMESH_FIGURES") == "" {
		t.Skip("set BERTH_NETMESH_FIGURES=1 to measure")
	}
	sink := sinkBackend(t)
	echo := tcpEchoBackend(t)
	_, sinkProxy := startProxy(t, ProxyConfig{}, Route{Proto: "tcp", Listen: listenAny, Backends: []Backend{{sink, true}}})
	_, echoProxy := startProxy(t, ProxyConfig{}, Route{Proto: "tcp", Listen: listenAny, Backends: []Backend{{echo, true}}})

	// Alternate short rounds, so a neighbour's burst on a shared machine
	// falls on both sides alike; take the medians.
	// The CPU seconds per GB (of this process: client, proxy and backend
	// together) show what the proxy's hop costs apart from the machine's
	// load.
	var direct, proxied, ratios, dCPU, pCPU []float64
	for range 5 {
		d, dc := throughput(t, sink.String())
		p, pc := throughput(t, sinkProxy)
		direct, proxied, ratios = append(direct, d), append(proxied, p), append(ratios, p/d)
		dCPU, pCPU = append(dCPU, dc), append(pCPU, pc)
	}
	t.Logf("throughput (median of 5 rounds): direct %.2f GB/s, proxied %.2f GB/s, ratio %.2fx (rounds %.2f)",
		median(direct)/1e9, median(proxied)/1e9, median(ratios), ratios)
	t.Logf("cpu per GB: direct %.2f s, proxied %.2f s", median(dCPU), median(pCPU))
	d50, d99 := latency(t, echo.String())
	p50, p99 := latency(t, echoProxy)
	t.Logf("latency direct: p50 %v p99 %v; proxied: p50 %v p99 %v; added p50 %v", d50, d99, p50, p99, p50-d50)
}

// sinkBackend reads a stream to its EOF and answers the byte count.
func sinkBackend(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				_ = binary.Write(c, binary.BigEndian, n)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func tcpEchoBackend(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// throughput sends up to 1 GiB, or for 1 s, and returns bytes/s as counted
// by the receiver, and the process's CPU seconds per GB.
func throughput(t *testing.T, addr string) (float64, float64) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	cpu0 := cpuTime()
	start := time.Now()
	_ = c.SetDeadline(start.Add(30 * time.Second))
	for sent := 0; sent < 1<<30 && time.Since(start) < time.Second; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	var got int64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil {
		t.Fatal(err)
	}
	return float64(got) / time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds() / (float64(got) / 1e9)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// latency offers 2000 round trips of 64 bytes at 2000/s on one connection.
func latency(t *testing.T, addr string) (p50, p99 time.Duration) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	msg, back := make([]byte, 64), make([]byte, 64)
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	rtts := make([]time.Duration, 0, 2000)
	for range 2000 {
		<-tick.C
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			t.Fatal(fmt.Errorf("round trip: %w", err))
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], rtts[len(rtts)*99/100]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
