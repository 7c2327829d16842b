package harness

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// HTTPGet GETs url until it answers 200 or timeout passes, and returns the
// body.
func HTTPGet(tb testing.TB, url string, timeout time.Duration) string {
	tb.Helper()
	var body string
	client := &http.Client{Timeout: 5 * time.Second}
	WaitFor(tb, timeout, "GET "+url, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s: %s", resp.Status, b)
		}
		body = string(b)
		return nil
	})
	return body
}

// HTTPStatus GETs url once and returns the status code (0 when nothing
// answered) and the body (or the error).
func HTTPStatus(url string) (int, string) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	return freePorts(tb, 1)
}

// freePorts returns the first of n consecutive ports free on every address,
// TCP and UDP, drawn at random below Linux's ephemeral range (32768 and
// up): a port from that range (what binding port 0 gives) can become the
// local port of any outgoing connection on the machine before the test
// binds it, and a published port or a server's was seen taken so.
func freePorts(tb testing.TB, n int) int {
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
