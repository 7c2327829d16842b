package state

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// TestMachineRecords: a machine is recorded, replaced (keeping its create
// index), carried by snapshots, and deleted; deleting a missing one is
// ErrNotFound; the kinds decode as the commands they were encoded from.
func TestMachineRecords(t *testing.T) {
	h := newHarness(t)
	m := &types.Machine{Name: "a1", Driver: "local", Role: "agent", Address: "10.210.0.3",
		Labels: map[string]string{"zone": "x"}, Created: t0}
	got := h.mustApply(UpsertMachine{Machine: m}).(*types.Machine)
	if got.CreateIndex != 1 || got.ModifyIndex != 1 {
		t.Fatalf("indexes = %d/%d, want 1/1", got.CreateIndex, got.ModifyIndex)
	}
	m.Labels["zone"] = "changed after submit" // the store keeps its own copy
	if v := h.store.View().Machine("a1"); v.Labels["zone"] != "x" {
		t.Fatalf("stored labels changed with the caller's map: %v", v.Labels)
	}
	m2 := &types.Machine{Name: "a1", Driver: "local", Role: "agent", Address: "10.210.0.4", Created: t0}
	got = h.mustApply(&UpsertMachine{Machine: m2}).(*types.Machine)
	if got.CreateIndex != 1 || got.ModifyIndex != 2 || got.Address != "10.210.0.4" {
		t.Fatalf("replaced record = %+v, want create 1, modify 2, the new address", got)
	}
	h.mustApply(UpsertMachine{Machine: &types.Machine{Name: "m1", Driver: "local", Role: "manager", Created: t0}})

	dst := newHarness(t)
	if err := dst.fsm.Restore(ioNopCloser(snapshotOf(t, h.fsm))); err != nil {
		t.Fatal(err)
	}
	if ms := dst.store.View().Machines(); len(ms) != 2 || ms[0].Name != "a1" || ms[1].Name != "m1" {
		t.Fatalf("machines after a snapshot restore = %v, want a1 and m1", ms)
	}
	dst.mustApply(DeleteMachine{Name: "a1"})
	if dst.store.View().Machine("a1") != nil {
		t.Fatal("a1 still recorded after DeleteMachine")
	}
	if _, err := dst.apply(DeleteMachine{Name: "a1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing machine: %v, want ErrNotFound", err)
	}
	if _, err := dst.apply(UpsertMachine{}); err == nil {
		t.Fatal("an upsert with no machine was accepted")
	}
}

// TestMachineKindsStay: the kinds are stored in Raft logs: they must keep
// their values.
func TestMachineKindsStay(t *testing.T) {
	for _, c := range []struct {
		cmd  Command
		want commandKind
	}{{UpsertMachine{}, 31}, {DeleteMachine{}, 32}} {
		if c.cmd.kind() != c.want {
			t.Errorf("%T kind = %d, want %d", c.cmd, c.cmd.kind(), c.want)
		}
		if got, err := newCommand(c.want); err != nil || got.kind() != c.want {
			t.Errorf("newCommand(%d) = %T, %v", c.want, got, err)
		}
	}
}
