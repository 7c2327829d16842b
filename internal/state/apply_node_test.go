package state

import (
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

func TestUpsertNode(t *testing.T) {
	h := newHarness(t)
	n := testNode("n1")
	n.LastHeartbeat = t0
	got := h.mustApply(UpsertNode{Node: n}).(*types.Node)
	if got.Status != types.NodeReady || got.Availability != types.AvailabilityActive || got.CreateIndex != 1 {
		t.Errorf("new node: status %s, availability %s, create index %d; want ready, active, 1", got.Status, got.Availability, got.CreateIndex)
	}
	if !got.LastHeartbeat.IsZero() {
		t.Error("the heartbeat time was stored in Raft")
	}

	h.mustApply(UpsertNode{Node: &types.Node{ID: "n1", Name: "node-n1", Availability: types.AvailabilityDrain}})
	h.mustApply(SetNodeStatus{ID: "n1", Status: types.NodeDown})
	update := testNode("n1")
	update.Address = "127.0.0.2:7000"
	h.mustApply(UpsertNode{Node: update}) // no availability or status given: both kept

	v := h.store.View()
	got = v.Node("n1")
	if got.Address != "127.0.0.2:7000" || got.Availability != types.AvailabilityDrain || got.Status != types.NodeDown ||
		got.CreateIndex != 1 || got.ModifyIndex != 4 {
		t.Errorf("updated node = %+v; want new address, drain, down, created at 1, modified at 4", got)
	}
	if v.NodeByName("node-n1") != got || v.NodeByName("nope") != nil {
		t.Error("NodeByName does not find the node by its name")
	}

	h.mustApply(SetNodeStatus{ID: "n1", Status: types.NodeDown})
	if idx := h.store.View().Index(TableNodes); idx != 4 {
		t.Errorf("a status that did not change was written: nodes index %d, want 4", idx)
	}
}
