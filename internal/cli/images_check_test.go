package cli

import (
	"strings"
	"testing"
)

// TestUpChecksImagesBeforeSubmit: an image neither on this machine's
// engine nor in its registry fails up before anything is submitted, naming
// the service and the image (it was found only on a node, after submit).
func TestUpChecksImagesBeforeSubmit(t *testing.T) {
	f, url := newFakeManager(t)
	h := newHarness(t)
	h.images.notInRegistry = map[string]bool{"nginx": true}
	if code := h.run(t, "up", "-d", "--addr", url); code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q", code, h.out)
	}
	want := "error: service web: image nginx is neither on this machine's Docker engine nor in its registry"
	if !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr %q\nwant %q", h.errOut, want)
	}
	if f.apps["hello"] != nil {
		t.Error("the app was submitted")
	}

	// A manager on another machine: its nodes may hold the image, so a
	// warning only.
	h = newHarness(t)
	h.images.notInRegistry = map[string]bool{"nginx": true}
	h.e.global.addr = "https://10.0.0.5:7700"
	if err := h.e.checkImages(t.Context(), &h.loader.app); err != nil {
		t.Fatalf("remote manager: %v, want a warning only", err)
	}
	if !strings.Contains(h.errOut.String(), "warning: service web: image nginx is neither") {
		t.Errorf("stderr %q, want a warning", h.errOut)
	}

	// An image on the engine, or one the registry has, passes.
	h = newHarness(t)
	h.images.have["nginx"] = "sha256:1"
	h.images.notInRegistry = map[string]bool{"nginx": true}
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
}
