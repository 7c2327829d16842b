package overlay

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestThroughput measures one TCP stream container to container over the
// overlay against host to host on the underlay, between two namespace
// hosts, in 7 back-to-back pairs of streams of up to 1 GiB or 2 s each,
// and logs the medians and the median ratio (target: at least 0.85). It
// loads both cores for half a minute, so it runs only when asked:
//
//	BERTH_OVERLAY_BENCH=1 go test -count=1 -v -run TestThroughput ./internal/overlay
func TestThroughput(t *testing.T) {
	if os.Getenv("BERTH_OVERLAY_BENCH") == "" {
		t.Skip("set BERTH_OVERLAY_BENCH=1 to measure")
	}
	// Network a goes over the overlay; network b is routed between the
	// hosts without encapsulation (as flannel's host-gw), to tell the cost
	// of VXLAN from that of the containers' bridges and filters.
	w := newWorld(t, 2, "a", "b")
	h1, h2 := w.hosts[0], w.hosts[1]
	for i, h := range w.hosts {
		d := w.desired(i, 1-i)
		d.Peers[0].Slices = []netip.Prefix{w.hosts[1-i].ctrs["a"].slice}
		if _, err := h.ov.Apply(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		other := w.hosts[1-i]
		w.run(h.ns, "ip", "route", "add", other.ctrs["b"].slice.String(), "via", other.underlay.String(), "dev", "eth0")
	}
	if os.Getenv("BERTH_OVERLAY_FEATURES") != "" {
		t.Log(w.run(h1.ns, "sh", "-c", "ethtool -k eth0 | grep -E 'segmentation|gro|checksum'; ethtool -k berth-vx | grep -E 'segmentation|gro|checksum'"))
	}
	for _, cmd := range strings.Fields(os.Getenv("BERTH_OVERLAY_TUNE")) {
		for _, h := range w.hosts {
			w.run(h.ns, "sh", "-c", strings.ReplaceAll(cmd, ",", " "))
		}
	}
	// The machine is shared, so the figures are medians of the ratios of
	// back-to-back runs, their order turning each round.
	paths := []struct {
		name     string
		from, to string
		at       netip.AddrPort
	}{
		{"host to host", h1.ns, h2.ns, netip.AddrPortFrom(h2.underlay, 7100)},
		{"container to container over the overlay", h1.ctrs["a"].ns, h2.ctrs["a"].ns, netip.AddrPortFrom(h2.ctrs["a"].addr, 7100)},
		{"container to container routed, no VXLAN", h1.ctrs["b"].ns, h2.ctrs["b"].ns, netip.AddrPortFrom(h2.ctrs["b"].addr, 7100)},
	}
	rates := make([][]float64, len(paths))
	ratios := make([][]float64, len(paths))
	for round := 0; round < 7; round++ {
		got := make([]float64, len(paths))
		for k := range paths {
			j := (k + round) % len(paths)
			got[j] = w.stream(paths[j].from, paths[j].to, paths[j].at)
		}
		for j := range paths {
			rates[j] = append(rates[j], got[j])
			ratios[j] = append(ratios[j], got[j]/got[0])
		}
	}
	if os.Getenv("BERTH_OVERLAY_FEATURES") != "" {
		t.Log(w.run(h2.ns, "sh", "-c", "ip -s link show eth0; ip -s link show berth-vx"))
	}
	for j, p := range paths {
		t.Logf("%s: %.2f Gbit/s median, %.2fx host to host (rounds %v Gbit/s; ratios %v)",
			p.name, median(rates[j])*8/1e9, median(ratios[j]), gbits(rates[j]), fixed(ratios[j]))
	}
}

func fixed(xs []float64) []string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%.2f", x))
	}
	return out
}

// stream sends from namespace from to a sink in namespace to and returns
// the bytes per second the sink saw.
func (w *world) stream(from, to string, at netip.AddrPort) float64 {
	w.t.Helper()
	return w.streamVia(from, to, at, at)
}

// streamVia is stream to a sink listening at at, dialled at dial (a VIP).
func (w *world) streamVia(from, to string, at, dial netip.AddrPort) float64 {
	w.t.Helper()
	rate, _ := w.streamViaN(from, to, at, dial)
	return rate
}

// streamN is stream that also returns the bytes the sink saw.
func (w *world) streamN(from, to string, at netip.AddrPort) (float64, int64) {
	w.t.Helper()
	return w.streamViaN(from, to, at, at)
}

func (w *world) streamViaN(from, to string, at, dial netip.AddrPort) (float64, int64) {
	w.t.Helper()
	const limit, maxTime = 1 << 30, 2 * time.Second
	var ln net.Listener
	if err := inNS(to, func() (err error) { ln, err = net.Listen("tcp", at.String()); return err }); err != nil {
		w.t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		n   int64
		d   time.Duration
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		// Not io.Copy to io.Discard: its ReadFrom reads 8 KiB at a time.
		buf := make([]byte, 1<<20)
		start := time.Now()
		var n int64
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				res <- result{n, time.Since(start), err}
				return
			}
		}
	}()
	var conn net.Conn
	if err := inNS(from, func() (err error) { conn, err = net.DialTimeout("tcp", dial.String(), 5*time.Second); return err }); err != nil {
		w.t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(maxTime)
	for sent := 0; sent < limit && time.Now().Before(deadline); sent += len(buf) {
		if _, err := conn.Write(buf); err != nil {
			w.t.Fatalf("send: %v", err)
		}
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	r := <-res
	conn.Close()
	if r.err != nil || r.n == 0 {
		w.t.Fatalf("sink: %d bytes, %v", r.n, r.err)
	}
	return float64(r.n) / r.d.Seconds(), r.n
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func gbits(xs []float64) []string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%.2f", x*8/1e9))
	}
	return out
}

// TestVIPThroughput measures one TCP stream from a container to a replica
// on another host through the service's VIP (DNAT) against straight to
// the replica's address, in 7 back-to-back pairs, and logs the medians:
//
//	BERTH_OVERLAY_BENCH=1 go test -count=1 -v -run TestVIPThroughput ./internal/overlay
func TestVIPThroughput(t *testing.T) {
	if os.Getenv("BERTH_OVERLAY_BENCH") == "" {
		t.Skip("set BERTH_OVERLAY_BENCH=1 to measure")
	}
	w, client, a, b, vip := vipWorld(t)
	w.applyVIP(vip, a, b)
	// Port 7200: the sink listens there; the VIP balances it to a only.
	d := w.desired(0, 1)
	d.VIPs = []VIP{{Addr: vip, Subnet: d.Networks[0].Subnet, Ports: []VIPPort{{"tcp", 7200}}, Backends: []netip.Addr{a.addr}}}
	if _, err := w.hosts[0].ov.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	at := netip.AddrPortFrom(a.addr, 7200)
	var direct, viaVIP, ratios []float64
	for round := 0; round < 7; round++ {
		var dr, vr float64
		if round%2 == 0 {
			dr = w.stream(client.ns, a.ns, at)
			vr = w.streamVia(client.ns, a.ns, at, netip.AddrPortFrom(vip, 7200))
		} else {
			vr = w.streamVia(client.ns, a.ns, at, netip.AddrPortFrom(vip, 7200))
			dr = w.stream(client.ns, a.ns, at)
		}
		direct, viaVIP, ratios = append(direct, dr), append(viaVIP, vr), append(ratios, vr/dr)
	}
	t.Logf("straight to the replica: %.2f Gbit/s median (%v)", median(direct)*8/1e9, gbits(direct))
	t.Logf("through the VIP: %.2f Gbit/s median (%v); %.2fx straight (ratios %v)", median(viaVIP)*8/1e9, gbits(viaVIP), median(ratios), fixed(ratios))
}

// TestVIPLatency measures new connections (connect, one answer, close)
// from a container to a replica on another host, through the VIP and
// straight, interleaved, and logs p50 and p99 of each:
//
//	BERTH_OVERLAY_BENCH=1 go test -count=1 -v -run TestVIPLatency ./internal/overlay
func TestVIPLatency(t *testing.T) {
	if os.Getenv("BERTH_OVERLAY_BENCH") == "" {
		t.Skip("set BERTH_OVERLAY_BENCH=1 to measure")
	}
	w, client, a, _, vip := vipWorld(t)
	w.applyVIP(vip, a)
	const n = 1000
	var direct, viaVIP []float64
	for i := range 2 * n {
		to := netip.AddrPortFrom(a.addr, vipPort)
		if i%2 == 1 {
			to = netip.AddrPortFrom(vip, vipPort)
		}
		start := time.Now()
		if _, err := call(client.ns, to, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		us := float64(time.Since(start).Microseconds())
		if i%2 == 1 {
			viaVIP = append(viaVIP, us)
		} else {
			direct = append(direct, us)
		}
	}
	sort.Float64s(direct)
	sort.Float64s(viaVIP)
	t.Logf("new connection, straight: p50 %.0f µs, p99 %.0f µs", direct[n/2], direct[n*99/100])
	t.Logf("new connection, through the VIP: p50 %.0f µs, p99 %.0f µs", viaVIP[n/2], viaVIP[n*99/100])
}

// TestThroughputAB measures one TCP stream container to container over
// the overlay with a setting off (A) and on (B), alternated within one
// run, each against host to host in the same round, so the machine's
// other load falls on both alike. BERTH_OVERLAY_AB is "ON|OFF": two lists
// of commands separated by ";", run with sh -c in every host's namespace
// (a command starting "ctr:" in every container's instead) to turn B on
// and off:
//
//	BERTH_OVERLAY_BENCH=1 BERTH_OVERLAY_AB='iptables -t raw -I OUTPUT -p udp --dport 4789 -j NOTRACK|iptables -t raw -D OUTPUT -p udp --dport 4789 -j NOTRACK' \
//	  go test -count=1 -v -run TestThroughputAB ./internal/overlay
func TestThroughputAB(t *testing.T) {
	ab := os.Getenv("BERTH_OVERLAY_AB")
	if os.Getenv("BERTH_OVERLAY_BENCH") == "" || ab == "" {
		t.Skip("set BERTH_OVERLAY_BENCH=1 and BERTH_OVERLAY_AB='ON|OFF' to measure")
	}
	on, off, ok := strings.Cut(ab, "|")
	if !ok {
		t.Fatal("BERTH_OVERLAY_AB must be ON|OFF")
	}
	w := newWorld(t, 2, "a")
	w.applyAll()
	h1, h2 := w.hosts[0], w.hosts[1]
	set := func(cmds string) {
		for _, cmd := range strings.Split(cmds, ";") {
			cmd = strings.TrimSpace(cmd)
			if cmd == "" {
				continue
			}
			for _, h := range w.hosts {
				if c, ok := strings.CutPrefix(cmd, "ctr:"); ok {
					w.run(h.ctrs["a"].ns, "sh", "-c", c)
				} else {
					w.run(h.ns, "sh", "-c", cmd)
				}
			}
		}
	}
	// Both ends of a stream are this process, and most of the kernel's
	// work on it runs in its time (a veth hands a packet on in the
	// sender's softirq): its CPU seconds per GB tell settings apart where
	// the machine's other load moves bytes/s by 10-20%.
	var cpu []float64
	measured := func(f func() (float64, int64)) float64 {
		before := selfCPU()
		rate, n := f()
		cpu = append(cpu, (selfCPU()-before).Seconds()/(float64(n)/1e9))
		return rate
	}
	host := func() float64 {
		return measured(func() (float64, int64) { return w.streamN(h1.ns, h2.ns, netip.AddrPortFrom(h2.underlay, 7100)) })
	}
	over := func() float64 {
		return measured(func() (float64, int64) {
			return w.streamN(h1.ctrs["a"].ns, h2.ctrs["a"].ns, netip.AddrPortFrom(h2.ctrs["a"].addr, 7100))
		})
	}
	rounds := 9
	if n, err := strconv.Atoi(os.Getenv("BERTH_OVERLAY_ROUNDS")); err == nil && n > 0 && n <= 50 {
		rounds = n
	}
	var ra, rb, rba, hosts, as, bs, cpuH, cpuA, cpuB, cba []float64
	for round := range rounds {
		var hr, a, b, ch, ca, cb float64
		// The three in an order that turns with the round.
		steps := []func(){
			func() { hr = host(); ch = cpu[len(cpu)-1] },
			func() { set(off); a = over(); ca = cpu[len(cpu)-1] },
			func() { set(on); b = over(); cb = cpu[len(cpu)-1]; set(off) },
		}
		for k := range steps {
			steps[(k+round)%len(steps)]()
		}
		hosts, as, bs = append(hosts, hr), append(as, a), append(bs, b)
		ra, rb, rba = append(ra, a/hr), append(rb, b/hr), append(rba, b/a)
		cpuH, cpuA, cpuB, cba = append(cpuH, ch), append(cpuA, ca), append(cpuB, cb), append(cba, cb/ca)
	}
	t.Logf("host to host: %.2f Gbit/s median (%v)", median(hosts)*8/1e9, gbits(hosts))
	t.Logf("A (off): %.2f Gbit/s median (%v), %.2fx host to host (%v)", median(as)*8/1e9, gbits(as), median(ra), fixed(ra))
	t.Logf("B (on):  %.2f Gbit/s median (%v), %.2fx host to host (%v)", median(bs)*8/1e9, gbits(bs), median(rb), fixed(rb))
	t.Logf("B/A per round: median %.2f (%v)", median(rba), fixed(rba))
	t.Logf("CPU s/GB: host to host %.3f (%v); A %.3f (%v); B %.3f (%v); B/A median %.2f (%v)",
		median(cpuH), fixed3(cpuH), median(cpuA), fixed3(cpuA), median(cpuB), fixed3(cpuB), median(cba), fixed(cba))
}

func fixed3(xs []float64) []string {
	var out []string
	for _, x := range xs {
		out = append(out, fmt.Sprintf("%.3f", x))
	}
	return out
}

// selfCPU is the CPU time this process used, all its threads.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
