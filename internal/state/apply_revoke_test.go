package state

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// TestRevokeNode: one entry revokes the node's ID and removes the node;
// again it is idempotent; entries past their Until go.
func TestRevokeNode(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&InitCluster{Cluster: &types.Cluster{CACertPEM: []byte("ca")}})
	h.mustApply(&UpsertNode{Node: testNode("n1")})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h.mustApply(&RevokeNode{ID: "old", Now: now.Add(-48 * time.Hour), Until: now.Add(-time.Hour)})
	h.mustApply(&RevokeNode{ID: "n1", Now: now, Until: now.Add(time.Hour)})
	h.mustApply(&RevokeNode{ID: "n1", Now: now, Until: now.Add(time.Hour)}) // retried: no error
	view := h.store.View()
	if view.Node("n1") != nil {
		t.Error("the revoked node is still in the store")
	}
	cl := view.Cluster()
	if !cl.IsRevoked("n1") || len(cl.Revoked) != 1 {
		t.Errorf("revoked = %+v, want only n1 (old expired, n1 once)", cl.Revoked)
	}
	if cl.IsRevoked("n2") {
		t.Error("n2 is revoked without a command")
	}
	if _, err := h.apply(&RevokeNode{}); err == nil {
		t.Error("a revocation without an ID was accepted")
	}
}

func TestSetAdminToken(t *testing.T) {
	h := newHarness(t)
	h.mustApply(&InitCluster{Cluster: &types.Cluster{AdminTokenHash: "h1"}})
	h.mustApply(&SetAdminToken{Hash: "h2"})
	if got := h.store.View().Cluster().AdminTokenHash; got != "h2" {
		t.Errorf("admin token hash %q, want h2", got)
	}
	if _, err := h.apply(&SetAdminToken{}); err == nil {
		t.Error("an empty hash was accepted")
	}
}
