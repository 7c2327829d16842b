package testkit

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// FreePorts returns the first of n consecutive ports free on every address,
// TCP and UDP, drawn at random below Linux's ephemeral range (32768 and
// up). A port from that range, which binding port 0 gives, can become the
// local port of any outgoing connection on the machine before the test
// binds it: published ports, servers' and test apps' were seen taken so on
// a busy machine.
func FreePorts(tb testing.TB, n int) int {
	tb.Helper()
	const lo, hi = 20000, 32768
	for range 200 {
		p := lo + rand.IntN(hi-lo-n)
		if portsFree(p, n) {
			return p
		}
	}
	tb.Fatalf("found no %d free consecutive ports in %d-%d", n, lo, hi)
	return 0
}

// FreePort is FreePorts of one port.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return FreePorts(tb, 1)
}

func portsFree(p, n int) bool {
	for i := range n {
		addr := net.JoinHostPort("0.0.0.0", strconv.Itoa(p+i))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}
