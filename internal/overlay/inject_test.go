package overlay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestOnlyPeersInject: a VXLAN packet carrying a frame for host 1's
// container reaches it when a peer (host 2) sends it, and not when
// another machine on the underlay sends the very same bytes.
func TestOnlyPeersInject(t *testing.T) {
	w := newWorld(t, 2, "a")
	w.applyAll()
	w.ip("-n", w.ul, "addr", "add", "198.18.0.250/24", "dev", "br0")
	h1, h2 := w.hosts[0], w.hosts[1]
	c1, c2 := h1.ctrs["a"], h2.ctrs["a"]
	var sink net.PacketConn
	if err := inNS(c1.ns, func() (err error) {
		sink, err = net.ListenPacket("udp4", netip.AddrPortFrom(c1.addr, 7001).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	pkt := vxlanPacket(DefaultVNI, MACFor(h1.underlay), MACFor(h2.underlay), c2.addr, c1.addr, 7001, []byte("hello"))
	to := netip.AddrPortFrom(h1.underlay, DefaultPort)
	for _, tc := range []struct {
		from string
		want bool
	}{{h2.ns, true}, {w.ul, false}} {
		send(t, tc.from, to, pkt)
		_ = sink.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 64)
		n, _, err := sink.ReadFrom(b)
		got := err == nil && string(b[:n]) == "hello"
		if got != tc.want {
			t.Fatalf("sent from %s: delivered %v (%v), want %v", tc.from, got, err, tc.want)
		}
	}
}

func send(t *testing.T, ns string, to netip.AddrPort, pkt []byte) {
	t.Helper()
	err := inNS(ns, func() error {
		c, err := net.Dial("udp4", to.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(pkt)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// vxlanPacket is a VXLAN payload: the header, then an Ethernet frame with
// an IPv4 UDP datagram from src to dst:port.
func vxlanPacket(vni int, dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, port uint16, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], port+1)
	binary.BigEndian.PutUint16(udp[2:], port)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload) // checksum 0: none, allowed over IPv4
	ip := make([]byte, 20, 20+len(udp))
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	ip = append(ip, udp...)
	frame := append(append(append([]byte{}, dstMAC...), srcMAC...), 0x08, 0x00)
	frame = append(frame, ip...)
	hdr := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	return append(hdr, frame...)
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
