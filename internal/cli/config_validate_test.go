package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/compose"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/types"
)

// TestConfigRunsTheManagersRules: what the manager refuses at submit,
// config refuses too (here a port published twice, which the Compose
// loader lets through).
func TestConfigRunsTheManagersRules(t *testing.T) {
	h := newHarness(t)
	web := h.loader.app.Services[0]
	web.Ports = append(web.Ports, web.Ports[0])
	if code := h.run(t, "config", "-q"); code != 1 {
		t.Fatalf("config exit %d, want 1", code)
	}
	want := "error: the manager would refuse this app: services.web.ports[1].published: port 8080/tcp is published twice"
	if !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr %q\nwant %q", h.errOut, want)
	}
}

// TestManagerAcceptsWhatComposeLoads: every valid Compose test case, as the
// loader converts it, passes the manager's rules (no false refusal by
// config).
func TestManagerAcceptsWhatComposeLoads(t *testing.T) {
	dirs, _ := filepath.Glob("../compose/testdata/*")
	n := 0
	for _, dir := range dirs {
		if strings.HasPrefix(filepath.Base(dir), "err_") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "app.golden.json")); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "app.golden.json"))
		if err != nil || !strings.Contains(string(raw), `"app"`) {
			continue
		}
		app := goldenApp(t, dir)
		if app == nil {
			continue
		}
		n++
		if err := server.ValidateApp(app); err != nil {
			t.Errorf("%s: the manager refuses what compose loads: %v", filepath.Base(dir), err)
		}
	}
	if n < 5 {
		t.Fatalf("only %d cases checked", n)
	}
}

func goldenApp(t *testing.T, dir string) *types.App {
	t.Helper()
	abs, _ := filepath.Abs(dir)
	o := compose.Options{WorkDir: abs, Environ: []string{}}
	if opts, err := os.ReadFile(filepath.Join(abs, "options.json")); err == nil && len(opts) > 0 {
		return nil // cases with their own options are covered by the compose tests
	}
	app, _, err := compose.Load(context.Background(), o)
	if err != nil {
		return nil
	}
	return app
}
