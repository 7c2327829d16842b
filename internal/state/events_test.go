package state

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func eventLines(evs []Event) string {
	var b []string
	for _, e := range evs {
		b = append(b, fmt.Sprintf("%d %s %s %s %s", e.Index, e.Kind, e.Action, e.ID, e.State))
	}
	return strings.Join(b, "\n")
}

func TestEvents(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0, Deploy: true})                         // 1
	h.mustApply(UpsertNode{Node: testNode("n1")})                                         // 2
	h.mustApply(TaskUpdates{Create: []*types.Task{testTask("t1", "api", 1)}, Now: t0})    // 3
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "t1", NodeID: "n1"}}, Now: t0}) // 4
	h.mustApply(UpsertNode{Node: testNode("n1")})                                         // 5: no news
	ctx := context.Background()
	evs, gap, err := h.store.Events(ctx, 0)
	if err != nil || gap != nil {
		t.Fatal(err, gap)
	}
	want := strings.Join([]string{
		"1 deployment created web/api/1 running", "1 deployment created web/db/1 running",
		"2 node created n1 ready", "3 task created t1 pending", "4 task updated t1 assigned",
	}, "\n")
	if got := eventLines(evs); got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
	if evs, _, _ := h.store.Events(ctx, 3); eventLines(evs) != "4 task updated t1 assigned" {
		t.Fatalf("events after 3: %s", eventLines(evs))
	}
	// A waiter wakes with the next event.
	got := make(chan []Event, 1)
	go func() {
		evs, _, _ := h.store.Events(ctx, 5)
		got <- evs
	}()
	h.mustApply(SetNodeStatus{ID: "n1", Status: types.NodeDown, Now: t0}) // 6
	select {
	case evs := <-got:
		if !strings.Contains(eventLines(evs), "6 node updated n1 down") || !strings.Contains(eventLines(evs), "6 task updated t1 lost") {
			t.Fatalf("woken with %s", eventLines(evs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter was not woken by the next event")
	}
}

func TestEventsGap(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertNode{Node: testNode("n1")})
	for i := range EventRingSize + 10 { // each a status change: one event each
		st := types.NodeReady
		if i%2 == 0 {
			st = types.NodeDown
		}
		h.mustApply(SetNodeStatus{ID: "n1", Status: st})
	}
	evs, gap, err := h.store.Events(context.Background(), 1)
	if err != nil || gap == nil || gap.From != 2 || gap.To != 11 || len(evs) != EventRingSize || evs[0].Index != 12 {
		t.Fatalf("gap %+v, %d events from %d; want the gap 2-11 and %d events from 12", gap, len(evs), evs[0].Index, EventRingSize)
	}
	// A restored manager knows nothing from before the snapshot.
	snap := snapshotOf(t, h.fsm)
	dst := newHarness(t)
	if err := dst.fsm.Restore(ioNopCloser(snap)); err != nil {
		t.Fatal(err)
	}
	_, gap, _ = dst.store.Events(context.Background(), 5)
	if gap == nil || gap.From != 6 {
		t.Fatalf("restored: gap %+v", gap)
	}
}
