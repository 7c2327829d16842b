package cli

import (
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// TestLogsWindowAndPrefixFlags runs berth logs against the fake manager and
// checks what reaches the manager (since, until as RFC 3339 times) and how
// the lines come out.
func TestLogsWindowAndPrefixFlags(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		tty          bool
		since, until string // the query the manager saw
		out, err     string
	}{
		{name: "relative since", args: []string{"--since", "10m"}, since: "2026-11-25T01:50:00Z", out: "web-1  | a\nweb-1  | b\n"},
		{name: "absolute until", args: []string{"--until", "2026-11-25T01:00:00Z"}, until: "2026-11-25T01:00:00Z", out: "web-1  | a\nweb-1  | b\n"},
		{name: "unix since", args: []string{"--since", "1795572000.5"}, since: "2026-11-25T02:00:00.5Z", out: "web-1  | a\nweb-1  | b\n"},
		{name: "both", args: []string{"--since", "1h", "--until", "30m"}, since: "2026-11-25T01:00:00Z", until: "2026-11-25T01:30:00Z", out: "web-1  | a\nweb-1  | b\n"},
		{name: "no prefix", args: []string{"--no-log-prefix"}, out: "a\nb\n"},
		{name: "colors on a terminal", tty: true, out: "\x1b[36mweb-1  |\x1b[0m a\n\x1b[36mweb-1  |\x1b[0m b\n"},
		{name: "no color", tty: true, args: []string{"--no-color"}, out: "web-1  | a\nweb-1  | b\n"},
		{name: "bad since", args: []string{"--since", "yesterday"}, err: `--since takes a time (2026-11-25T02:00:00Z), a Unix time or a duration back from now (10m), not "yesterday"`},
		{name: "until before since", args: []string{"--since", "10m", "--until", "1h"}, err: "--until is before --since"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := newFakeManager(t)
			f.apps["hello"] = &types.App{Name: "hello", Services: []*types.Service{{Name: "web"}}}
			task := f.addTask("hello", "web", 1, "a\nb\n")
			var mu sync.Mutex
			var seen url.Values
			addr := withRoutes(t, f, map[string]http.HandlerFunc{
				"GET /v1/tasks/{id}/logs": func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					seen = r.URL.Query()
					mu.Unlock()
					_, _ = io.WriteString(w, f.logs[r.PathValue("id")])
				},
			})
			h := newHarness(t)
			h.e.isTTY = func(io.Writer) bool { return tt.tty }
			code := h.run(t, append([]string{"logs", "-p", "hello", "--addr", addr}, tt.args...)...)
			if !exitAsWanted(t, h, code, tt.err) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen == nil {
				t.Fatalf("the logs of %s were never asked for", task.ID)
			}
			if seen.Get("since") != tt.since || seen.Get("until") != tt.until {
				t.Errorf("manager saw since=%q until=%q, want %q %q", seen.Get("since"), seen.Get("until"), tt.since, tt.until)
			}
			if h.out.String() != tt.out {
				t.Errorf("stdout = %q, want %q", h.out, tt.out)
			}
		})
	}
}
