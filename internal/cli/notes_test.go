package cli

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/compose"
)

// TestConfigNotesRestartDefault: config says that berth restarts failed
// tasks where Compose would not, once for all the services concerned;
// other commands stay quiet about it.
func TestConfigNotesRestartDefault(t *testing.T) {
	h := newHarness(t)
	h.loader.warnings = append(h.loader.warnings,
		compose.Warning{Path: "services.api.restart", Message: compose.MsgRestartDefault, Note: true},
		compose.Warning{Path: "services.web.restart", Message: compose.MsgRestartDefault, Note: true})
	if code := h.run(t, "config", "-q"); code != 0 {
		t.Fatalf("config exit %d: %s", code, h.errOut)
	}
	want := "note: services.api.restart, services.web.restart: " + compose.MsgRestartDefault + "\n"
	if !strings.Contains(h.errOut.String(), want) {
		t.Fatalf("stderr %q\nwant it to contain %q", h.errOut, want)
	}
	if !strings.Contains(compose.MsgRestartDefault, `Compose's default is restart: "no"`) {
		t.Fatalf("the note does not say how Compose differs: %s", compose.MsgRestartDefault)
	}
	h2 := newHarness(t)
	h2.loader.warnings = h.loader.warnings
	h2.run(t, "ps", "-f", "x.yaml")
	if strings.Contains(h2.errOut.String(), "note:") {
		t.Fatalf("ps printed a note: %s", h2.errOut)
	}
}
