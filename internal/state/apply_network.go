package state

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/ipam"
	"github.com/berth-dev/berth/internal/types"
)

// Cluster networks (`berth network create`): networks no app owns, which
// apps join by declaring them external. The record is in TableNetworks;
// its subnet and every node's slice are in the overlay's pool under its
// name, beside the apps' own networks ("<app>_<key>"), so the two share
// one namespace and one address plan.

// TableNetworks holds one types.ClusterNetwork per cluster network.
const TableNetworks = "networks"

// ErrConflict is wrapped by the errors of commands refused because of
// what else is in the store (a name taken, a network in use).
var ErrConflict = errors.New("conflict")

// ErrInvalid is wrapped by the errors of commands whose arguments are bad;
// the message names the argument.
var ErrInvalid = errors.New("invalid")

// marked is an error that wraps a sentinel without saying so in its
// message: the user reads one sentence, the API tells 400 from 409.
type marked struct {
	err  error
	kind error
}

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.err, m.kind} }
func mark(kind, err error) error  { return &marked{err: err, kind: kind} }
func conflictf(format string, args ...any) error {
	return mark(ErrConflict, fmt.Errorf(format, args...))
}
func invalidf(format string, args ...any) error { return mark(ErrInvalid, fmt.Errorf(format, args...)) }

func networksSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableNetworks,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		},
	}
}

// CreateNetwork makes a cluster network: its subnet is Subnet when given
// (checked against every other network's), else the pool's next free one.
// Result: the stored *types.ClusterNetwork; an error wrapping ErrConflict
// when the name is taken or the subnet overlaps, ErrInvalid for a bad
// subnet.
type CreateNetwork struct {
	Name     string            `json:"name"`
	Subnet   string            `json:"subnet,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Now      time.Time         `json:"now"`
}

// DeleteNetwork removes a cluster network and frees its addresses.
// Result: nil; an error wrapping ErrNotFound when there is none, and
// ErrConflict (naming the apps) while an app declares it.
type DeleteNetwork struct {
	Name string `json:"name"`
}

func (CreateNetwork) kind() commandKind { return kindCreateNetwork }
func (DeleteNetwork) kind() commandKind { return kindDeleteNetwork }

func (c CreateNetwork) apply(w *writeTxn) (any, error) {
	if c.Name == "" || len(c.Name) > types.MaxNetworkNameLen {
		return nil, invalidf("network name must be 1 to %d characters", types.MaxNetworkNameLen)
	}
	if first[types.ClusterNetwork](w.txn, TableNetworks, "id", c.Name) != nil {
		return nil, conflictf("network %s already exists", c.Name)
	}
	if app := ownerOf(w.txn, c.Name); app != "" {
		return nil, conflictf("network name %s is app %s's own network: choose another name", c.Name, app)
	}
	var chosen netip.Prefix
	if c.Subnet != "" {
		p, err := netip.ParsePrefix(c.Subnet)
		if err != nil {
			return nil, invalidf("subnet %q is not a prefix such as 10.100.0.0/16", c.Subnet)
		}
		chosen = p
	}
	var subnet netip.Prefix
	err := changePool(w, func(p *ipam.Pool) error {
		var err error
		if chosen.IsValid() {
			subnet, err = p.AddFixedNetwork(c.Name, chosen)
		} else {
			// A name the pool holds with no record (an external network
			// an app joined before cluster networks existed) keeps its
			// subnet: its containers are on it.
			subnet, err = p.AddNetwork(c.Name)
		}
		return poolError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("create network %s: %w", c.Name, err)
	}
	n := &types.ClusterNetwork{Name: c.Name, Subnet: subnet.String(), Internal: c.Internal, Labels: maps.Clone(c.Labels),
		Chosen: chosen.IsValid(), CreatedAt: c.Now, CreateIndex: w.index, ModifyIndex: w.index}
	return n, w.insert(TableNetworks, n)
}

func (c DeleteNetwork) apply(w *writeTxn) (any, error) {
	n := first[types.ClusterNetwork](w.txn, TableNetworks, "id", c.Name)
	if n == nil {
		return nil, fmt.Errorf("network %s: %w; berth network ls lists them", c.Name, ErrNotFound)
	}
	if users := networkUsers(w.txn, c.Name); len(users) > 0 {
		return nil, conflictf("network %s is in use by app %s: remove it from their Compose files (or run berth down) first",
			c.Name, strings.Join(users, ", "))
	}
	if err := changePool(w, func(p *ipam.Pool) error {
		p.RemoveNetwork(c.Name)
		return nil
	}); err != nil {
		return nil, err
	}
	return nil, w.delete(TableNetworks, n)
}

// poolError marks the pool's refusals with the store's sentinels, so the
// API answers 400 or 409 without knowing ipam.
func poolError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ipam.ErrInvalid):
		return invalidf("%w", err)
	case errors.Is(err, ipam.ErrTaken), errors.Is(err, ipam.ErrExhausted):
		return conflictf("%w", err)
	}
	return err
}

// networkUsers lists, sorted, the apps that declare cluster network name
// external (apps being removed included: their tasks may still be on it).
func networkUsers(txn *memdb.Txn, name string) []string {
	var out []string
	for _, app := range list[types.App](txn, TableApps, "id") {
		for key, n := range app.Networks {
			if n != nil && n.External && app.NetworkKey(key) == name {
				out = append(out, app.Name)
				break
			}
		}
	}
	return out
}

// ownerOf names the app whose own network has key, or "".
func ownerOf(txn *memdb.Txn, key string) string {
	for _, app := range list[types.App](txn, TableApps, "id") {
		if ownNetworks(app)[key] {
			return app.Name
		}
	}
	return ""
}

// externalNetworks checks that every network app declares external is a
// cluster network, and gives the app's record of each the cluster
// network's internal flag and labels, which the drivers and the overlay
// read from the app (Compose ignores the other keys of an external
// network, as the network exists already), so every node makes it alike
// whichever app's task comes first.
func externalNetworks(w *writeTxn, app *types.App) error {
	for _, key := range slices.Sorted(maps.Keys(app.Networks)) {
		n := app.Networks[key]
		if n == nil || !n.External {
			continue
		}
		name := app.NetworkKey(key)
		cn := first[types.ClusterNetwork](w.txn, TableNetworks, "id", name)
		if cn == nil {
			return invalidf("network %s declared as external, but could not be found; run berth network create %s", name, name)
		}
		n.Internal, n.Labels = cn.Internal, maps.Clone(cn.Labels)
	}
	return nil
}

// ClusterNetwork returns the named cluster network, or nil.
func (v *View) ClusterNetwork(name string) *types.ClusterNetwork {
	return first[types.ClusterNetwork](v.txn, TableNetworks, "id", name)
}

// ClusterNetworks returns every cluster network, sorted by name.
func (v *View) ClusterNetworks() []*types.ClusterNetwork {
	return list[types.ClusterNetwork](v.txn, TableNetworks, "id")
}

// NetworkUsers lists, sorted, the apps that declare cluster network name.
func (v *View) NetworkUsers(name string) []string {
	return networkUsers(v.txn, name)
}
