package api

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// TestNodeTasksMerge: an answer of changes is made whole from the answer
// the agent holds, in the manager's order, or refused when it does not
// fit that answer (the agent then asks for all).
func TestNodeTasksMerge(t *testing.T) {
	task := func(id string, mod uint64) *types.Task { return &types.Task{ID: id, ModifyIndex: mod} }
	held := &NodeTasks{Tasks: []*types.Task{task("a", 3), task("b", 4), task("c", 5)}}
	ref := func(id string, mod uint64) TaskRef { return TaskRef{ID: id, ModifyIndex: mod} }
	for _, tc := range []struct {
		name    string
		answer  *NodeTasks
		held    *NodeTasks
		want    []string // "id@modify"
		wantErr bool
	}{
		{"a whole answer stays whole", &NodeTasks{Tasks: []*types.Task{task("x", 9)}}, held, []string{"x@9"}, false},
		{"one changed, one new, one gone", &NodeTasks{Known: 5, Tasks: []*types.Task{task("b", 7), task("d", 8)},
			Order: []TaskRef{ref("a", 3), ref("b", 7), ref("d", 8)}}, held, []string{"a@3", "b@7", "d@8"}, false},
		{"nothing changed", &NodeTasks{Known: 5, Tasks: []*types.Task{}, Order: []TaskRef{ref("a", 3), ref("b", 4), ref("c", 5)}}, held,
			[]string{"a@3", "b@4", "c@5"}, false},
		{"an unchanged task the agent does not hold", &NodeTasks{Known: 5, Order: []TaskRef{ref("z", 2)}}, held, nil, true},
		{"an unchanged task held at another version", &NodeTasks{Known: 5, Order: []TaskRef{ref("a", 2)}}, held, nil, true},
		{"nothing held", &NodeTasks{Known: 5, Order: []TaskRef{ref("a", 3)}}, nil, nil, true},
		{"a changed task left out of the order", &NodeTasks{Known: 5, Tasks: []*types.Task{task("q", 6)}, Order: []TaskRef{ref("a", 3)}}, held, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.answer.Merge(tc.held)
			if tc.wantErr {
				if !errors.Is(err, ErrStaleDelta) {
					t.Fatalf("Merge = %v, want ErrStaleDelta", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tk := range tc.answer.Tasks {
				got = append(got, tk.ID+"@"+strconv.FormatUint(tk.ModifyIndex, 10))
			}
			if !slices.Equal(got, tc.want) || tc.answer.Known != 0 || tc.answer.Order != nil {
				t.Errorf("merged %v (known %d, order %v), want %v", got, tc.answer.Known, tc.answer.Order, tc.want)
			}
		})
	}
}
