package hosts

import (
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// drainOrder scales web from 2 to 1 while the client on a1 calls web by
// its VIP (a new connection each time) and resolves tasks.web. in a
// loop, and checks the order of events, not a timer: the removed replica
// answered before and got no request after its SIGTERM (it closes its
// listener at the signal, so one sent later fails the loop); the client's
// DNS stopped answering its address before the signal; and at the signal
// its own node's DNS no longer answered it. Every clock here is the
// machine's one clock.
func drainOrder(t *testing.T, n *netCluster, client *types.Task) {
	if got := len(n.tasks(t, netApp, "web")); got != 2 {
		t.Fatalf("web runs %d replicas, want the 2 the scale down left", got)
	}
	before := n.records(t)
	var g getResult
	var w watchResult
	waitGet := n.background(client, 2*time.Minute, &g, "get", webURL, "-n", "20000", "-d", "90s", "-interval", "5ms",
		"-stop", "/rec/stop-g", "-mark", "/rec/mark-g", "-mark-hosts", "2")
	waitWatch := n.background(client, 2*time.Minute, &w, "watch", "tasks.web.", "-n", "20000", "-d", "90s", "-interval", "10ms",
		"-stop", "/rec/stop-g", "-mark", "/rec/mark-gw")
	h.WaitFor(t, 30*time.Second, "the request loop answered by both replicas", n.exists("mark-g"))
	h.WaitFor(t, 30*time.Second, "the DNS loop under way", n.exists("mark-gw"))
	n.c.must(t, "scale", "-p", netApp, "web=1")
	var recs []stopRecord
	h.WaitFor(t, time.Minute, "the removed replica stopped", n.newFinalRecords(t, before, 1, &recs))
	n.touch(t, "stop-g")
	errGet, errWatch := waitGet(), waitWatch()
	if errGet != nil || errWatch != nil {
		t.Fatalf("the loops: %v; %v", errGet, errWatch)
	}
	rec := recs[0]
	sig := time.Unix(0, rec.SigtermAt)
	t.Logf("removed %s (%v), SIGTERM at %s; requests %d ok, %d failed, by %v; DNS %d answers, %d failed",
		rec.Host, rec.Addrs, sig.Format(time.RFC3339Nano), g.OK, g.Failed, g.By, w.OK, w.Failed)

	if g.Failed != 0 {
		t.Errorf("%d of %d requests failed through the scale down: %v", g.Failed, g.OK+g.Failed, g.Errors)
	}
	if rec.HTTPAfter != 0 || rec.UDPAfter != 0 {
		t.Errorf("%s was sent %d requests and %d datagrams after its SIGTERM; want none (out of the mesh first)", rec.Host, rec.HTTPAfter, rec.UDPAfter)
	}
	last, ok := g.Last[rec.Host]
	switch {
	case !ok:
		t.Errorf("%s answered no request of the loop before it left: the order cannot be told (by %v)", rec.Host, g.By)
	case last >= rec.SigtermAt:
		t.Errorf("%s answered a request %s after its SIGTERM", rec.Host, time.Duration(last-rec.SigtermAt))
	}
	if len(rec.Addrs) == 0 {
		t.Fatalf("%s recorded no address of its own", rec.Host)
	}
	for _, a := range rec.Addrs {
		if _, seen := w.First[a]; !seen {
			t.Errorf("the client's DNS never answered %s's %s for tasks.web. (saw %v): the order cannot be told", rec.Host, a, keys(w.First))
		} else if w.Last[a] >= rec.SigtermAt {
			t.Errorf("the client's DNS (on a1) answered %s's %s %s after its SIGTERM", rec.Host, a, time.Duration(w.Last[a]-rec.SigtermAt))
		}
		own := rec.Lookups["tasks.web."]
		if slices.Contains(own, a) || len(own) == 0 || !inPool(own) {
			t.Errorf("at its SIGTERM, %s's own node's DNS answered tasks.web. with %v; want the remaining replica only, not its %s", rec.Host, own, a)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
