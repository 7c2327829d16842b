package state

import (
	"errors"
	"fmt"
	"maps"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/types"
)

// Machine records: the hosts berth made (see types.Machine), by name.

func machinesSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableMachines,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
		},
	}
}

// UpsertMachine records a host or replaces its record. Result: the stored
// *types.Machine.
type UpsertMachine struct {
	Machine *types.Machine `json:"machine"`
}

// DeleteMachine forgets a host's record. Result: nil; an error wrapping
// ErrNotFound when there is none.
type DeleteMachine struct {
	Name string `json:"name"`
}

func (UpsertMachine) kind() commandKind { return kindUpsertMachine }
func (DeleteMachine) kind() commandKind { return kindDeleteMachine }

func (c UpsertMachine) apply(w *writeTxn) (any, error) {
	if c.Machine == nil || c.Machine.Name == "" {
		return nil, errors.New("upsert machine: the machine has no name")
	}
	m := cloneMachine(c.Machine)
	m.ModifyIndex = w.index
	if old := first[types.Machine](w.txn, TableMachines, "id", m.Name); old != nil {
		m.CreateIndex = old.CreateIndex
	} else {
		m.CreateIndex = w.index
	}
	return m, w.insert(TableMachines, m)
}

func (c DeleteMachine) apply(w *writeTxn) (any, error) {
	old := first[types.Machine](w.txn, TableMachines, "id", c.Name)
	if old == nil {
		return nil, fmt.Errorf("machine %s: %w", c.Name, ErrNotFound)
	}
	return nil, w.delete(TableMachines, old)
}

func cloneMachine(m *types.Machine) *types.Machine {
	c := *m
	c.Labels = maps.Clone(m.Labels)
	return &c
}

// Machine returns the record of one host, or nil.
func (v *View) Machine(name string) *types.Machine {
	return first[types.Machine](v.txn, TableMachines, "id", name)
}

// Machines returns every host's record, sorted by name.
func (v *View) Machines() []*types.Machine {
	return list[types.Machine](v.txn, TableMachines, "id")
}
