package state

import (
	"errors"
	"slices"

	"github.com/berth-dev/berth/internal/types"
)

// clusterKey is the ID of the one record in TableCluster.
const clusterKey = "cluster"

// InitCluster stores the cluster's identity at bootstrap. It is refused
// once a cluster record exists: a cluster is initialised once. Result: nil.
type InitCluster struct {
	Cluster *types.Cluster `json:"cluster"`
}

// SetTokens replaces sealed join tokens (rotation); an empty field keeps
// the current token. Result: nil.
type SetTokens struct {
	WorkerSealed  []byte `json:"worker_sealed,omitempty"`
	ManagerSealed []byte `json:"manager_sealed,omitempty"`
}

// UpsertManager records a manager's addresses. Result: nil.
type UpsertManager struct {
	Manager types.Manager `json:"manager"`
}

// RemoveManager forgets a manager. Result: nil.
type RemoveManager struct {
	ID string `json:"id"`
}

func (InitCluster) kind() commandKind   { return kindInitCluster }
func (SetTokens) kind() commandKind     { return kindSetTokens }
func (UpsertManager) kind() commandKind { return kindUpsertManager }
func (RemoveManager) kind() commandKind { return kindRemoveManager }

func (c InitCluster) apply(w *writeTxn) (any, error) {
	if c.Cluster == nil {
		return nil, errors.New("init cluster: no cluster given")
	}
	if first[types.Cluster](w.txn, TableCluster, "id", clusterKey) != nil {
		return nil, errors.New("init cluster: this cluster is already initialised")
	}
	cl := cloneCluster(c.Cluster)
	cl.ModifyIndex = w.index
	return nil, w.insert(TableCluster, clusterRecord(cl))
}

func (c SetTokens) apply(w *writeTxn) (any, error) {
	return updateCluster(w, func(cl *types.Cluster) bool {
		if len(c.WorkerSealed) > 0 {
			cl.WorkerTokenSealed = slices.Clone(c.WorkerSealed)
		}
		if len(c.ManagerSealed) > 0 {
			cl.ManagerTokenSealed = slices.Clone(c.ManagerSealed)
		}
		return len(c.WorkerSealed) > 0 || len(c.ManagerSealed) > 0
	})
}

func (c UpsertManager) apply(w *writeTxn) (any, error) {
	return updateCluster(w, func(cl *types.Cluster) bool {
		if m := cl.Manager(c.Manager.ID); m != nil {
			if *m == c.Manager {
				return false
			}
			*m = c.Manager
			return true
		}
		cl.Managers = append(cl.Managers, c.Manager)
		return true
	})
}

func (c RemoveManager) apply(w *writeTxn) (any, error) {
	return updateCluster(w, func(cl *types.Cluster) bool {
		n := len(cl.Managers)
		cl.Managers = slices.DeleteFunc(cl.Managers, func(m types.Manager) bool { return m.ID == c.ID })
		return len(cl.Managers) != n
	})
}

func updateCluster(w *writeTxn, change func(*types.Cluster) bool) (any, error) {
	old := first[types.Cluster](w.txn, TableCluster, "id", clusterKey)
	if old == nil {
		return nil, errors.New("the cluster is not initialised yet")
	}
	cl := cloneCluster(old)
	if !change(cl) {
		return nil, nil
	}
	cl.ModifyIndex = w.index
	return nil, w.insert(TableCluster, cl)
}

// clusterRecord pins the record's key so there is only ever one.
func clusterRecord(cl *types.Cluster) *types.Cluster {
	cl.ID = clusterKey
	return cl
}

func cloneCluster(c *types.Cluster) *types.Cluster {
	out := *c
	out.CACertPEM = slices.Clone(c.CACertPEM)
	out.CAKeySealed = slices.Clone(c.CAKeySealed)
	out.WorkerTokenSealed = slices.Clone(c.WorkerTokenSealed)
	out.ManagerTokenSealed = slices.Clone(c.ManagerTokenSealed)
	out.Managers = slices.Clone(c.Managers)
	return &out
}
