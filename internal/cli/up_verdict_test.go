package cli

import (
	"strings"
	"testing"
)

// TestUpAfterScaleSaysWhatChanged: berth scale web=5, then up with the
// file's 2 replicas, says "5 -> 2 replicas", not "unchanged".
func TestUpAfterScaleSaysWhatChanged(t *testing.T) {
	f, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	f.mu.Lock()
	f.apps["hello"].Service("web").Replicas = 5
	f.mu.Unlock()
	h = newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("second up: exit %d: %s", code, h.errOut)
	}
	if !strings.Contains(h.out.String(), "  web  5 -> 2 replicas\n") || !strings.Contains(h.out.String(), "  api  unchanged\n") {
		t.Errorf("stdout = %q, want web 5 -> 2 replicas and api unchanged", h.out)
	}
}
