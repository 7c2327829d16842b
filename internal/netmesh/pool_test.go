package netmesh

import (
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"
)

type nopCloser struct{ _ int } // not zero-sized, so each is its own map key

func (*nopCloser) Close() error { return nil }

func TestPoolPick(t *testing.T) {
	ap := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}), 80)
	}
	tests := []struct {
		name      string
		backends  []Backend
		localOnly bool
		down      []int // backends that refused just now
		picks     int
		want      string // the picks in order, by last byte of the address
	}{
		{"remote ones in turn, least connections", []Backend{{ap(2), false}, {ap(3), false}, {ap(4), false}}, false, nil, 6, "[2 3 4 2 3 4]"},
		{"local first", []Backend{{ap(2), false}, {ap(3), true}}, false, nil, 3, "[3 3 3]"},
		{"local down: remote", []Backend{{ap(2), false}, {ap(3), true}}, false, []int{3}, 2, "[2 2]"},
		{"all down: still tried", []Backend{{ap(2), false}}, false, []int{2}, 1, "[2]"},
		{"local only, none local", []Backend{{ap(2), false}}, true, nil, 1, "[<nil>]"},
		{"none", nil, false, nil, 1, "[<nil>]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			p := newPool(time.Second, time.Minute)
			p.now = func() time.Time { return now }
			p.set(tc.backends, tc.localOnly)
			for _, d := range tc.down {
				b := p.pick(map[*backend]bool{}, &nopCloser{})
				for b.Addr != ap(d) { // pick until the one to fail comes up
					b = p.pick(map[*backend]bool{}, &nopCloser{})
				}
				p.failed(b, &nopCloser{})
			}
			p = resetCounts(p)
			var got []any
			for range tc.picks {
				b := p.pick(map[*backend]bool{}, &nopCloser{})
				if b == nil {
					got = append(got, nil)
					continue
				}
				got = append(got, int(b.Addr.Addr().As4()[3]))
			}
			if fmt.Sprint(got) != tc.want {
				t.Fatalf("picks %v, want %s", got, tc.want)
			}
		})
	}
}

// resetCounts forgets the connections counted while setting a case up.
func resetCounts(p *pool) *pool {
	for _, b := range p.all {
		b.active = 0
		b.conns = map[io.Closer]struct{}{}
	}
	return p
}

// A backend put back while it drains is current again, with its open
// connections counted; one that drains to zero connections is forgotten.
func TestPoolDrainAndReAdd(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.2:80")
	p := newPool(time.Second, time.Hour)
	c := &nopCloser{}
	p.set([]Backend{{a, true}}, false)
	b := p.pick(map[*backend]bool{}, c)
	p.set(nil, false)
	if !b.removed || p.pick(map[*backend]bool{}, &nopCloser{}) != nil {
		t.Fatal("a removed backend is still picked")
	}
	p.set([]Backend{{a, true}}, false)
	if b.removed || p.all[a] != b || b.active != 1 {
		t.Fatalf("re-added backend: removed %v, same %v, active %d; want current, the same, 1", b.removed, p.all[a] == b, b.active)
	}
	p.set(nil, false)
	p.done(b, c)
	if _, ok := p.all[a]; ok {
		t.Fatal("a drained backend with no connection left is still kept")
	}
}
