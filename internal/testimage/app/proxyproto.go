package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// proxySig starts every PROXY protocol v2 header.
var proxySig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// parseProxyV2 reads a PROXY protocol v2 header from the front of b. It
// returns the source address it names ("" for a LOCAL command or an
// address family it does not know), the header's length, and ok=false
// when b does not start with the signature. Only the fixed part and the
// IPv4/IPv6 addresses are read; TLVs are skipped.
func parseProxyV2(b []byte) (src string, n int, ok bool, err error) {
	if len(b) < 16 || !bytes.Equal(b[:12], proxySig) {
		return "", 0, false, nil
	}
	if b[12]>>4 != 2 {
		return "", 0, true, fmt.Errorf("PROXY header version %d, want 2", b[12]>>4)
	}
	n = 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if len(b) < n {
		return "", 0, true, errors.New("PROXY header cut short")
	}
	if b[12]&0x0f == 0 { // LOCAL: the proxy's own connection
		return "", n, true, nil
	}
	body := b[16:n]
	switch b[13] >> 4 {
	case 1: // AF_INET
		if len(body) < 12 {
			return "", 0, true, errors.New("PROXY header: short IPv4 addresses")
		}
		ip := netip.AddrFrom4([4]byte(body[0:4]))
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[8:10])).String(), n, true, nil
	case 2: // AF_INET6
		if len(body) < 36 {
			return "", 0, true, errors.New("PROXY header: short IPv6 addresses")
		}
		ip := netip.AddrFrom16([16]byte(body[0:16]))
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[32:34])).String(), n, true, nil
	}
	return "", n, true, nil
}

// proxyListener accepts connections that may start with a PROXY v2
// header (the routing mesh's, when the service asks for it) or not (a
// VIP's, a health check's).
type proxyListener struct{ net.Listener }

func (l proxyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{Conn: c, r: bufio.NewReaderSize(c, 4096)}, nil
}

// proxyConn strips the header on its first Read and keeps the client
// address it named.
type proxyConn struct {
	net.Conn
	r      *bufio.Reader
	once   sync.Once
	client string
	err    error
}

func (c *proxyConn) Read(p []byte) (int, error) {
	c.once.Do(c.readHeader)
	if c.err != nil {
		return 0, c.err
	}
	return c.r.Read(p)
}

// readHeader peeks: an HTTP client sends first, so the bytes are there.
func (c *proxyConn) readHeader() {
	head, _ := c.r.Peek(16)
	if len(head) < 16 || !bytes.Equal(head[:12], proxySig) {
		return
	}
	all, _ := c.r.Peek(16 + int(binary.BigEndian.Uint16(head[14:16])))
	src, n, _, err := parseProxyV2(all)
	if err != nil {
		c.err = err
		return
	}
	c.client = src
	_, _ = c.r.Discard(n)
}

// proxyClient is the address the PROXY header named, "" without one.
func (c *proxyConn) proxyClient() string {
	c.once.Do(c.readHeader)
	return c.client
}
