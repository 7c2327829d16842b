package harness

import (
	"bufio"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testPool picks the dev cluster's overlay address pool: a /14 of 10/8 at
// random, clear of this machine's addresses, routes and resolvers. The
// default pool may hold the machine's resolver (the overlay routes its
// pool unreachable, so the machine would lose its DNS), and two test runs
// on one engine must not make networks of one subnet.
func testPool(tb testing.TB) netip.Prefix {
	tb.Helper()
	taken := machinePrefixes()
	var free []netip.Prefix
	for x := 16; x < 252; x += 4 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(x), 0, 0}), 14)
		clear := true
		for _, t := range taken {
			if p.Overlaps(t) {
				clear = false
				break
			}
		}
		if clear {
			free = append(free, p)
		}
	}
	if len(free) == 0 {
		tb.Fatal("no /14 of 10.0.0.0/8 is clear of this machine's routes for the dev cluster's address pool")
	}
	return free[rand.IntN(len(free))]
}

// machinePrefixes are the machine's interface prefixes, IPv4 routes and
// resolvers.
func machinePrefixes() []netip.Prefix {
	var out []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
	}
	if b, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			for i, w := range f {
				if i > 1 {
					break
				}
				if p, err := netip.ParsePrefix(w); err == nil {
					out = append(out, p)
				} else if a, err := netip.ParseAddr(w); err == nil && a.Is4() {
					out = append(out, netip.PrefixFrom(a, 32))
				}
			}
		}
	}
	if f, err := os.Open("/etc/resolv.conf"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "nameserver" {
				if a, err := netip.ParseAddr(f[1]); err == nil && a.Is4() {
					out = append(out, netip.PrefixFrom(a, 32))
				}
			}
		}
	}
	return out
}

// DropPoolRoute removes the unreachable routes the node's overlay left for
// the networks of pool (the agent keeps them past its stop, as it keeps its
// containers), so a finished test leaves the machine's routes as it found
// them.
func DropPoolRoute(pool netip.Prefix) {
	out, err := exec.Command("ip", "-4", "route", "show", "type", "unreachable", "proto", "245").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		// "unreachable 10.80.0.0/18 ..." or, without the type, "10.80.0.0/18 ...".
		dst := f[0]
		if dst == "unreachable" {
			dst = f[1]
		}
		if p, err := netip.ParsePrefix(dst); err == nil && pool.Overlaps(p) {
			_ = exec.Command("ip", "route", "del", "unreachable", p.String(), "proto", "245").Run()
		}
	}
}
