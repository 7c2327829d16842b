package cli

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

func (f *fakeManager) listPins(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []*types.VolumePin{}
	for _, p := range f.pins {
		if p.App == r.PathValue("name") {
			out = append(out, p)
		}
	}
	f.reply(w, 200, out)
}

func (f *fakeManager) unpin(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	slot, _ := strconv.Atoi(r.URL.Query().Get("slot"))
	var removed []*types.VolumePin
	f.pins = slices.DeleteFunc(f.pins, func(p *types.VolumePin) bool {
		hit := p.App == r.PathValue("name") && p.Service == r.PathValue("service") && (slot == 0 || p.Slot == slot)
		if hit {
			removed = append(removed, p)
		}
		return hit
	})
	if len(removed) == 0 {
		f.fail(w, 404, "no pin")
		return
	}
	f.reply(w, 200, removed)
}

func TestParseReplica(t *testing.T) {
	tests := []struct {
		in      string
		service string
		slot    int
		err     string
	}{
		{"db", "db", 0, ""},
		{"db.2", "db", 2, ""},
		{"my.db", "my.db", 0, ""},
		{"my.db.10", "my.db", 10, ""},
		{"db.0", "", 0, "replica numbers start at 1"},
		{".1", "", 0, "want SERVICE or SERVICE.N"},
	}
	for _, tc := range tests {
		svc, slot, err := parseReplica(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseReplica(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || svc != tc.service || slot != tc.slot {
			t.Errorf("parseReplica(%q) = %q, %d, %v; want %q, %d", tc.in, svc, slot, err, tc.service, tc.slot)
		}
	}
}

// TestPsShowsPinsAndUnpin: ps lists which node holds each replica's
// volumes, unpin removes one and says where the data stays, and unpinning
// what is not pinned fails naming it.
func TestPsShowsPinsAndUnpin(t *testing.T) {
	f, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	f.pins = []*types.VolumePin{
		{ID: "hello/web.2", App: "hello", Service: "web", Slot: 2, NodeID: "node1id0000", Volumes: []string{"data"}},
		{ID: "hello/web.1", App: "hello", Service: "web", Slot: 1, NodeID: "gone0000000000", Volumes: []string{"data", "logs"}},
	}
	h = newHarness(t)
	if code := h.run(t, "ps", "--addr", url); code != 0 {
		t.Fatalf("ps: exit %d: %s", code, h.errOut)
	}
	out := h.out.String()
	_, pins, ok := strings.Cut(out, "\n\n")
	if !ok {
		t.Fatalf("ps printed no pin table:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(pins), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REPLICA") ||
		!strings.Contains(lines[1], "web.1") || !strings.Contains(lines[1], "data,logs") || !strings.Contains(lines[1], "gone0000") ||
		!strings.Contains(lines[2], "web.2") || !strings.Contains(lines[2], "laptop") {
		t.Fatalf("pin table:\n%s", pins)
	}

	h = newHarness(t)
	if code := h.run(t, "service", "unpin", "web.2", "--addr", url); code != 0 {
		t.Fatalf("unpin: exit %d: %s", code, h.errOut)
	}
	if want := "Unpinned web.2: its volume data stays on node laptop; its next placement may pick any node, where its volumes start empty\n"; h.out.String() != want {
		t.Errorf("unpin said %q, want %q", h.out, want)
	}
	if len(f.pins) != 1 || f.pins[0].Slot != 1 {
		t.Errorf("pins left: %+v, want web.1 only", f.pins)
	}
	h = newHarness(t)
	if code := h.run(t, "service", "unpin", "web.2", "--addr", url); code != 1 {
		t.Fatalf("second unpin: exit %d, want 1", code)
	}
	if want := "error: web.2 of app hello has no pinned volume; berth ps lists the pins\n"; !strings.HasSuffix(h.errOut.String(), want) {
		t.Errorf("stderr = %q, want %q", h.errOut, want)
	}
}
