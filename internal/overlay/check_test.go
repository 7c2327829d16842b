package overlay

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestNewConfig(t *testing.T) {
	self := netip.MustParseAddr("198.18.0.1")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{Underlay: self}, ""},
		{"no underlay", Config{}, "underlay address"},
		{"ipv6 underlay", Config{Underlay: netip.MustParseAddr("fd00::1")}, "underlay address"},
		{"long name", Config{Underlay: self, Device: "berth-overlay-0123"}, "longer than"},
		{"vni", Config{Underlay: self, VNI: 1 << 24}, "VNI"},
		{"port", Config{Underlay: self, Port: 70000}, "VXLAN port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := New(tc.cfg)
			if tc.want == "" {
				if err != nil || o.cfg.Device != DefaultDevice || o.cfg.VNI != DefaultVNI || o.cfg.Port != DefaultPort {
					t.Fatalf("New = %+v, %v", o, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

func TestCheckDesired(t *testing.T) {
	pfx, addr := netip.MustParsePrefix, netip.MustParseAddr
	netA := Network{Subnet: pfx("10.240.0.0/18"), Slice: pfx("10.240.1.0/24")}
	netB := Network{Subnet: pfx("10.240.64.0/18"), Slice: pfx("10.240.65.0/24")}
	peer := func(u string, slices ...string) Peer {
		p := Peer{Underlay: addr(u)}
		for _, s := range slices {
			p.Slices = append(p.Slices, pfx(s))
		}
		return p
	}
	many := make([]Peer, maxEntries+1)
	for _, tc := range []struct {
		name string
		d    Desired
		want string // "" = valid; else the field named
	}{
		{"empty", Desired{}, ""},
		{"two networks, two peers", Desired{Networks: []Network{netA, netB}, Peers: []Peer{peer("198.18.0.2", "10.240.2.0/24", "10.240.66.0/24"), peer("198.18.0.3", "10.240.3.0/24")}}, ""},
		{"network without a local slice", Desired{Networks: []Network{{Subnet: netA.Subnet}}, Peers: []Peer{peer("198.18.0.2", "10.240.2.0/24")}}, ""},
		{"bad subnet", Desired{Networks: []Network{{Subnet: pfx("10.240.0.1/18")}}}, "networks[0].subnet"},
		{"overlapping networks", Desired{Networks: []Network{netA, {Subnet: pfx("10.240.0.0/16")}}}, "networks[1].subnet"},
		{"slice outside", Desired{Networks: []Network{{Subnet: netA.Subnet, Slice: pfx("10.241.0.0/24")}}}, "networks[0].slice"},
		{"peer is this node", Desired{Networks: []Network{netA}, Peers: []Peer{peer("198.18.0.1")}}, "peers[0].underlay"},
		{"peer twice", Desired{Networks: []Network{netA}, Peers: []Peer{peer("198.18.0.2"), peer("198.18.0.2")}}, "peers[1] has the underlay"},
		{"peer slice overlaps ours", Desired{Networks: []Network{netA}, Peers: []Peer{peer("198.18.0.2", "10.240.1.0/25")}}, "peers[0].slices[0]"},
		{"peer slice in no network", Desired{Networks: []Network{netA}, Peers: []Peer{peer("198.18.0.2", "10.250.1.0/24")}}, "in none of the networks"},
		{"multicast mac", Desired{Networks: []Network{netA}, Peers: []Peer{{Underlay: addr("198.18.0.2"), MAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}}}}, "peers[0].mac"},
		{"too many peers", Desired{Peers: many}, "at most 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _ := New(Config{Underlay: addr("198.18.0.1")})
			err := o.check(tc.d)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

func TestMACFor(t *testing.T) {
	m := MACFor(netip.MustParseAddr("198.18.0.2"))
	if m.String() != "0a:be:c6:12:00:02" || m[0]&1 != 0 || m[0]&2 == 0 {
		t.Fatalf("MACFor = %s: want locally administered unicast with the address", m)
	}
}
