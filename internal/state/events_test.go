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

// TestEventRingKeepsTheLast: through single adds and batches larger than
// the ring, past several compactions, the ring keeps exactly the last
// EventRingSize events in order and its floor is the last one dropped.
func TestEventRingKeepsTheLast(t *testing.T) {
	r := newEventRing(0)
	var next uint64
	batch := func(n int) []Event {
		evs := make([]Event, n)
		for i := range evs {
			next++
			evs[i] = Event{Index: next}
		}
		return evs
	}
	for step := range 3*EventRingSize + 50 {
		n := 1
		if step%1000 == 999 {
			n = EventRingSize + 5
		}
		r.add(batch(n))
		kept := r.events[r.start:]
		want := min(int(next), EventRingSize)
		if len(kept) != want || kept[len(kept)-1].Index != next || kept[0].Index != next-uint64(want)+1 {
			t.Fatalf("after %d events: %d kept, %d to %d; want %d ending at %d", next, len(kept), kept[0].Index, kept[len(kept)-1].Index, want, next)
		}
		if wantFloor := next - uint64(want); r.floor != wantFloor {
			t.Fatalf("after %d events: floor %d, want %d", next, r.floor, wantFloor)
		}
		if len(r.events) > 2*EventRingSize+EventRingSize+5 {
			t.Fatalf("after %d events: the slice holds %d, more than the ring and what dropped off since its last compaction", next, len(r.events))
		}
	}
}
