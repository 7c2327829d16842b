package state

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/types"
)

// TableNetPool holds the one NetPool record: the overlay's address
// allocations. The FSM allocates in the same entry as the change that needs
// the addresses (a network and its VIPs with the app, a node's slice with
// the placement of its first task of the network), so an agent never sees a
// task without the slice its network needs, and a replayed log hands every
// manager the same addresses (ipam is deterministic).
const TableNetPool = "netpool"

// NetPool is the stored allocation state.
type NetPool struct {
	ID   string     `json:"id"` // always netPoolID
	Pool *ipam.Pool `json:"pool"`
}

const netPoolID = "pool"

func netPoolSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableNetPool,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		},
	}
}

// getPool returns the stored pool, or an empty one of the default
// configuration when none was stored yet. Callers must not mutate it.
func getPool(txn *memdb.Txn) *ipam.Pool {
	if rec := first[NetPool](txn, TableNetPool, "id", netPoolID); rec != nil && rec.Pool != nil {
		return rec.Pool
	}
	cfg := ipam.DefaultConfig()
	if cl := first[types.Cluster](txn, TableCluster, "id", clusterKey); cl != nil {
		// Checked at bootstrap; a record that fails to parse keeps the
		// default rather than stopping the FSM.
		pool, _ := netip.ParsePrefix(cl.AddressPool)
		cfg = ipam.PlanFor(pool, cl.AddressSlice)
	}
	p, err := ipam.New(cfg)
	if err != nil {
		if p, err = ipam.New(ipam.DefaultConfig()); err != nil {
			panic(fmt.Sprintf("state: the default address pool is invalid: %v", err))
		}
	}
	return p
}

// changePool applies change to a copy of the pool and stores the copy when
// it differs, so watchers of the table wake only for a real allocation.
func changePool(w *writeTxn, change func(p *ipam.Pool) error) error {
	old := getPool(w.txn)
	p := old.Clone()
	if err := change(p); err != nil {
		return err
	}
	if old.Equal(p) {
		return nil
	}
	return w.insert(TableNetPool, &NetPool{ID: netPoolID, Pool: p})
}

// appVIPs lists the (network key, service ID) pairs that get a VIP: every
// vip-mode service on each of its networks.
func appVIPs(app *types.App) map[[2]string]bool {
	out := map[[2]string]bool{}
	if app == nil {
		return out
	}
	for _, svc := range app.Services {
		if svc.EndpointMode == types.EndpointDNSRR {
			continue
		}
		for _, att := range svc.Networks {
			out[[2]string{app.NetworkKey(att.Name), types.ServiceID(app.Name, svc.Name)}] = true
		}
	}
	return out
}

func sortedPairs(m map[[2]string]bool) [][2]string {
	return slices.SortedFunc(maps.Keys(m), func(a, b [2]string) int {
		return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1]))
	})
}

// ownNetworks lists the keys of the app's own networks: those it declares
// and those its services join (the implicit default), external ones left
// out, as they are shared between apps.
func ownNetworks(app *types.App) map[string]bool {
	out := map[string]bool{}
	if app == nil {
		return out
	}
	add := func(name string) {
		if n := app.Networks[name]; n == nil || !n.External {
			out[app.NetworkKey(name)] = true
		}
	}
	for name := range app.Networks {
		add(name)
	}
	for _, svc := range app.Services {
		for _, att := range svc.Networks {
			add(att.Name)
		}
	}
	return out
}

// allocateApp gives every network the app's services join a subnet, and
// every vip-mode service a VIP on each of them; VIPs of services gone from
// the app (or switched to dnsrr), and networks the app no longer has, are
// released. Allocation is next-fit, so what was just released is the last
// to be handed out again while its containers stop.
func allocateApp(w *writeTxn, app, old *types.App) error {
	if err := externalNetworks(w, app); err != nil { // apply_network.go
		return err
	}
	want, had := appVIPs(app), appVIPs(old)
	keep := ownNetworks(app)
	for _, key := range slices.Sorted(maps.Keys(keep)) {
		if first[types.ClusterNetwork](w.txn, TableNetworks, "id", key) != nil {
			return conflictf("network %s is a cluster network (berth network ls): declare it external to join it, or rename this app's network", key)
		}
	}
	return changePool(w, func(p *ipam.Pool) error {
		for _, svc := range app.Services {
			for _, att := range svc.Networks {
				if err := addAppNetwork(p, app, att.Name); err != nil {
					return fmt.Errorf("network %s of service %s: %w", att.Name, svc.Name, poolError(err))
				}
			}
		}
		// In sorted order: allocation is next-fit, so the order decides
		// the addresses, and every manager must reach the same ones.
		for _, pair := range sortedPairs(want) {
			if _, err := p.AddVIP(pair[0], pair[1]); err != nil {
				return fmt.Errorf("virtual address of service %s on network %s: %w", pair[1], pair[0], err)
			}
		}
		for _, pair := range sortedPairs(had) {
			if !want[pair] {
				p.RemoveVIP(pair[0], pair[1])
			}
		}
		for _, key := range slices.Sorted(maps.Keys(ownNetworks(old))) {
			if !keep[key] {
				p.RemoveNetwork(key)
			}
		}
		return allocateMeshSlices(p, app, list[types.Node](w.txn, TableNodes, "id"))
	})
}

// addAppNetwork gives the app's network name its subnet: the one the
// Compose file chose (ipam), else the pool's next. An external network
// has its subnet from `berth network create` (externalNetworks checked
// it is there).
func addAppNetwork(p *ipam.Pool, app *types.App, name string) error {
	key := app.NetworkKey(name)
	n := app.Networks[name]
	switch {
	case n != nil && n.External:
		return nil
	case n != nil && n.Subnet != "":
		s, err := netip.ParsePrefix(n.Subnet)
		if err != nil {
			return fmt.Errorf("ipam subnet %q is not a prefix such as 10.100.0.0/16: %w", n.Subnet, ipam.ErrInvalid)
		}
		_, err = p.AddFixedNetwork(key, s)
		return err
	}
	_, err := p.AddNetwork(key)
	return err
}

// meshNetworks are the keys of the networks whose services publish a port
// through the routing mesh (ingress mode, not x-berth-mesh: local): every
// node's mesh answers such a port and dials a replica on another node over
// the overlay, so every node needs a slice of them, task or not, for its
// VTEP address (the source its dials come from, and the replies' way
// back). Sorted, as allocation order decides the addresses.
func meshNetworks(app *types.App) []string {
	keys := map[string]bool{}
	for _, svc := range app.Services {
		if svc.Mesh == types.MeshLocal || !slices.ContainsFunc(svc.Ports, func(p types.Port) bool {
			return p.Published != 0 && p.Mode == types.PortIngress
		}) {
			continue
		}
		for _, att := range svc.Networks {
			keys[app.NetworkKey(att.Name)] = true
		}
	}
	return slices.Sorted(maps.Keys(keys))
}

// allocateMeshSlices gives the nodes a slice of each of the app's mesh
// networks that have a subnet.
func allocateMeshSlices(p *ipam.Pool, app *types.App, nodes []*types.Node) error {
	for _, key := range meshNetworks(app) {
		if _, ok := p.Subnet(key); !ok {
			continue
		}
		for _, n := range nodes {
			if _, err := p.AddNode(key, n.ID); err != nil {
				return fmt.Errorf("slice of network %s for node %s (its routing mesh): %w", key, n.Name, err)
			}
		}
	}
	return nil
}

// allocateNodeMeshSlices gives a node that registers a slice of every mesh
// network (meshNetworks) of every app.
func allocateNodeMeshSlices(w *writeTxn, n *types.Node) error {
	return changePool(w, func(p *ipam.Pool) error { // stores nothing when no app has one
		for _, app := range list[types.App](w.txn, TableApps, "id") {
			if err := allocateMeshSlices(p, app, []*types.Node{n}); err != nil {
				return err
			}
		}
		return nil
	})
}

// allocateSlices gives the task's node a slice of each network of the
// task's service, at placement, in pool (the entry's one copy). A node
// that has them already costs a lookup per network, no copy: at 10,000
// nodes a copy of the pool is milliseconds, and most placements land
// where the network is. The error, when a network has no slice left for
// the node, is the sentence the task's pending reason shows.
func allocateSlices(w *writeTxn, pool *poolEdit, t *types.Task) error {
	if t.NodeID == "" {
		return nil
	}
	app := getApp(w.txn, t.App)
	if app == nil {
		return nil
	}
	svc := app.Service(t.Service)
	if svc == nil || len(svc.Networks) == 0 {
		return nil
	}
	for _, att := range svc.Networks {
		key := app.NetworkKey(att.Name)
		p := pool.get()
		if _, ok := p.Subnet(key); !ok {
			continue // allocated with the app; gone only once purged
		}
		if _, ok := p.Slice(key, t.NodeID); ok {
			continue
		}
		if _, err := pool.edit().AddNode(key, t.NodeID); err != nil {
			return fmt.Errorf("no address for the task: %w", err)
		}
		pool.changed = true
	}
	return nil
}

// poolEdit is one entry's copy of the pool, made on its first change and
// stored once at the end (commit), however many tasks the entry places.
type poolEdit struct {
	w       *writeTxn
	p       *ipam.Pool
	changed bool // an allocation succeeded (a refused one changes nothing)
}

// get returns the pool as the entry has it so far; callers must not
// mutate it.
func (e *poolEdit) get() *ipam.Pool {
	if e.p != nil {
		return e.p
	}
	return getPool(e.w.txn)
}

// edit returns the entry's copy, to change.
func (e *poolEdit) edit() *ipam.Pool {
	if e.p == nil {
		e.p = getPool(e.w.txn).Clone()
	}
	return e.p
}

// commit stores the copy, if a change made one.
func (e *poolEdit) commit() error {
	if !e.changed {
		return nil
	}
	return e.w.insert(TableNetPool, &NetPool{ID: netPoolID, Pool: e.p})
}

// releaseApp frees the app's own networks (their slices and VIPs with
// them) once the app is purged. External networks are shared between apps
// and stay.
func releaseApp(w *writeTxn, app *types.App) error {
	return changePool(w, func(p *ipam.Pool) error {
		for _, pair := range sortedPairs(appVIPs(app)) {
			p.RemoveVIP(pair[0], pair[1])
		}
		for _, key := range slices.Sorted(maps.Keys(ownNetworks(app))) {
			p.RemoveNetwork(key)
		}
		return nil
	})
}

// releaseNode frees a removed node's slices everywhere.
func releaseNode(w *writeTxn, nodeID string) error {
	return changePool(w, func(p *ipam.Pool) error {
		p.RemoveNodeEverywhere(nodeID)
		return nil
	})
}

// Pool returns the overlay's address allocations as of the view. Callers
// must not mutate it.
func (v *View) Pool() *ipam.Pool {
	return getPool(v.txn)
}
