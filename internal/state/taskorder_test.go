package state

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/types"
)

// TestTaskOrderIndex: the order index lists tasks as compareTasks sorts
// them, for every filter listTasks serves from it, with apps and services
// that are prefixes of one another, slots below zero and past 255, several
// tasks of one slot (replaced, on other nodes) and pending ones (no node).
func TestTaskOrderIndex(t *testing.T) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		t.Fatal(err)
	}
	var all []*types.Task
	n := 0
	for _, app := range []string{"a", "ab", "b"} {
		for _, svc := range []string{"", "w", "web", "web2"} {
			for _, slot := range []int{-1, 0, 1, 2, 255, 256, 70000} {
				for _, node := range []string{"", "n1", "n10", "n2"} {
					n++
					all = append(all, &types.Task{ID: fmt.Sprintf("t%04d", rand.IntN(10000)) + fmt.Sprint(n), App: app, Service: svc,
						Slot: slot, NodeID: node, CreateIndex: uint64(rand.IntN(3))})
				}
			}
		}
	}
	txn := db.Txn(true)
	for _, i := range rand.Perm(len(all)) {
		if err := txn.Insert(TableTasks, all[i]); err != nil {
			t.Fatal(err)
		}
	}
	txn.Commit()
	read := db.Txn(false)
	for _, f := range []TaskFilter{{}, {App: "a"}, {App: "ab"}, {App: "a", Service: "w"}, {App: "ab", Service: "web"}, {App: "b", Service: ""}, {App: "b", NodeID: "n1"}} {
		want := slices.DeleteFunc(slices.Clone(all), func(t *types.Task) bool {
			return (f.App != "" && t.App != f.App) || (f.Service != "" && t.Service != f.Service) || (f.NodeID != "" && t.NodeID != f.NodeID)
		})
		slices.SortFunc(want, compareTasks)
		got := (&View{txn: read}).Tasks(f)
		if !slices.Equal(got, want) {
			t.Errorf("filter %+v: %d tasks out of order or missing, want %d", f, len(got), len(want))
		}
	}
}
