package overlay

import (
	"net/netip"
	"sort"

	"github.com/berth-dev/berth/internal/ipam"
)

// DesiredFrom is node self's Desired state in pool: the networks self has
// a slice of, and every other node with a slice of one of them (its slices
// of those networks only) whose underlay address is in underlays. A node
// without a known address is left out: nothing could reach it. The result
// is sorted, so equal inputs give equal values.
func DesiredFrom(pool *ipam.Pool, self string, underlays map[string]netip.Addr) Desired {
	var d Desired
	peers := map[string]*Peer{}
	for _, id := range pool.NetworkIDs() {
		slices := pool.Slices(id)
		mine, ok := slices[self]
		if !ok {
			continue
		}
		subnet, _ := pool.Subnet(id)
		d.Networks = append(d.Networks, Network{Subnet: subnet, Slice: mine})
		for node, s := range slices {
			u, known := underlays[node]
			if node == self || !known {
				continue
			}
			if peers[node] == nil {
				peers[node] = &Peer{Underlay: u}
			}
			peers[node].Slices = append(peers[node].Slices, s)
		}
	}
	for _, p := range peers {
		sort.Slice(p.Slices, func(i, j int) bool { return p.Slices[i].Addr().Less(p.Slices[j].Addr()) })
		d.Peers = append(d.Peers, *p)
	}
	sort.Slice(d.Peers, func(i, j int) bool { return d.Peers[i].Underlay.Less(d.Peers[j].Underlay) })
	return d
}
