package state

import (
	"errors"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// RevokeNode revokes a node's certificates and removes the node (`berth
// node rm`) in one entry, so no leader change between the two can leave a
// removed node whose certificate still works. The node may already be gone
// (a retried removal, or a node that never registered): the revocation
// stands on its own. Entries past their Until are dropped on the way.
// Result: nil.
type RevokeNode struct {
	ID    string    `json:"id"`
	Now   time.Time `json:"now"`
	Until time.Time `json:"until"`
}

// SetAdminToken replaces the hash of the admin token (a dev cluster mints a
// fresh one on each start and hands it to its user only). Result: nil.
type SetAdminToken struct {
	Hash string `json:"hash"`
}

func (RevokeNode) kind() commandKind    { return kindRevokeNode }
func (SetAdminToken) kind() commandKind { return kindSetAdminToken }

func (c RevokeNode) apply(w *writeTxn) (any, error) {
	if c.ID == "" {
		return nil, errors.New("revoke node: no node ID given")
	}
	_, err := updateCluster(w, func(cl *types.Cluster) bool {
		kept := slices.DeleteFunc(slices.Clone(cl.Revoked), func(r types.Revocation) bool {
			return r.Until.Before(c.Now) || r.NodeID == c.ID
		})
		cl.Revoked = append(kept, types.Revocation{NodeID: c.ID, RevokedAt: c.Now, Until: c.Until})
		return true
	})
	if err != nil {
		return nil, err
	}
	if first[types.Node](w.txn, TableNodes, "id", c.ID) == nil {
		return nil, nil
	}
	return DeleteNode{ID: c.ID, Now: c.Now}.apply(w)
}

func (c SetAdminToken) apply(w *writeTxn) (any, error) {
	if c.Hash == "" {
		return nil, errors.New("set admin token: no hash given")
	}
	return updateCluster(w, func(cl *types.Cluster) bool {
		if cl.AdminTokenHash == c.Hash {
			return false
		}
		cl.AdminTokenHash = c.Hash
		return true
	})
}
