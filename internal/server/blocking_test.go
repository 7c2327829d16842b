package server

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// On a new cluster no app or task was ever written, so those tables have
// index 0; a blocking query asked with the index of the previous answer
// must still block (it used to answer at once, with index 0 again, and
// every agent asked thousands of times a second).
func TestBlockingQueryBlocksOnEmptyTables(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	nc, nodeID := joinNode(t, s, "n1")
	if _, err := nc.RegisterNode(ctx, types.Node{Name: "n1", Address: "127.0.0.1:1", Drivers: []string{"exec"}}); err != nil {
		t.Fatal(err)
	}
	const wait = time.Second
	queries := []struct {
		name string
		ask  func(index uint64) (uint64, error)
	}{
		{"node tasks", func(index uint64) (uint64, error) {
			_, m, err := nc.NodeTasks(ctx, nodeID, api.QueryOptions{Index: index, Wait: wait})
			return m.Index, err
		}},
		{"tasks", func(index uint64) (uint64, error) {
			_, m, err := c.ListTasks(ctx, api.TaskQuery{QueryOptions: api.QueryOptions{Index: index, Wait: wait}})
			return m.Index, err
		}},
	}
	for _, q := range queries {
		t.Run(q.name, func(t *testing.T) {
			idx, err := q.ask(0)
			if err != nil {
				t.Fatal(err)
			}
			if idx == 0 {
				t.Errorf("first answer carries index 0")
			}
			start := time.Now()
			if _, err := q.ask(idx); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < wait*9/10 {
				t.Fatalf("a blocking query with index %d answered after %s, want it to wait %s", idx, took, wait)
			}
		})
	}
}
