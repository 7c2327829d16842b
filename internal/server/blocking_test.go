package server

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
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

// TestNodeTasksSinceKnown: an agent that says which answer it holds is
// answered with the tasks changed since and the order of all, which merge
// into what a whole answer says; a bad index is refused naming the field.
func TestNodeTasksSinceKnown(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	nc, nodeID := joinNode(t, s, "n1")
	if _, err := nc.RegisterNode(ctx, types.Node{Name: "n1", Address: "127.0.0.1:1", Drivers: []string{"exec"},
		Capacity: types.ResourceAmounts{NanoCPUs: 8e9, MemoryBytes: 8 << 30}}); err != nil {
		t.Fatal(err)
	}
	app := &types.App{Name: "a", Services: []*types.Service{{Name: "w", Mode: types.ModeReplicated, Replicas: 3, Driver: types.DriverExec,
		Command: []string{"/bin/true"}, Networks: nil}}}
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	var held *api.NodeTasks
	var heldAt uint64
	waitFor(t, 10*time.Second, "three tasks on n1", func() bool {
		nt, m, err := nc.NodeTasks(ctx, nodeID, api.QueryOptions{})
		held, heldAt = nt, m.Index
		return err == nil && len(nt.Tasks) == 3
	})
	if err := c.Scale(ctx, "a", "w", 4); err != nil {
		t.Fatal(err)
	}
	var delta *api.NodeTasks
	waitFor(t, 10*time.Second, "the fourth task on n1", func() bool {
		nt, _, err := nc.NodeTasksSince(ctx, nodeID, api.QueryOptions{}, heldAt)
		delta = nt
		return err == nil && len(nt.Order) == 4
	})
	if delta.Known != heldAt || len(delta.Tasks) >= 4 {
		t.Fatalf("answer of changes: known %d (want %d), %d task bodies for 4 tasks", delta.Known, heldAt, len(delta.Tasks))
	}
	if err := delta.Merge(held); err != nil {
		t.Fatal(err)
	}
	whole, _, err := nc.NodeTasks(ctx, nodeID, api.QueryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := taskIDs(delta.Tasks), taskIDs(whole.Tasks); !slices.Equal(got, want) {
		t.Errorf("merged %v, the whole answer %v", got, want)
	}
	if _, _, err := nc.NodeTasksSince(ctx, nodeID, api.QueryOptions{}, 0); err != nil {
		t.Errorf("known 0: %v", err)
	}
	hc := &http.Client{Transport: nc.RoundTripper()}
	resp, err := hc.Get(nc.Addr() + strings.Replace(api.PathNodeTasks, "{id}", nodeID, 1) + "?known=yesterday")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "known") {
		t.Errorf("known=yesterday: %d %s, want 400 naming known", resp.StatusCode, body)
	}
}

func taskIDs(ts []*types.Task) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}
