package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

func TestLogsEndpointStreams(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("web", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "t", 1) // task "t-1"
	waitFor(t, "the task running", func() bool { return m.inState(types.TaskRunning, ids...) })
	c := managerHTTP(t, m)
	logsURL := func(id, query string) string {
		return "https://" + a.Addr() + strings.Replace(api.PathAgentTaskLogs, "{id}", id, 1) + query
	}

	t.Run("tail", func(t *testing.T) {
		resp, err := c.Get(logsURL("t-1", "?tail=2&timestamps=true"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "t-1 line 2\nt-1 line 3\n" {
			t.Errorf("got %d %q, want the last two lines", resp.StatusCode, body)
		}
		fd.lock(func() {
			want := []driver.LogOptions{{Tail: 2, Timestamps: true}}
			if fmt.Sprint(fd.logOpts) != fmt.Sprint(want) {
				t.Errorf("driver log options = %+v, want %+v", fd.logOpts, want)
			}
		})
	})

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, logsURL("t-1", "?follow=true"), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		lines := bufio.NewReader(resp.Body)
		for _, want := range []string{"t-1 line 1", "t-1 line 2", "t-1 line 3"} {
			expectLine(t, lines, want)
		}
		// A line written later arrives while the stream stays open.
		fd.logLines <- "late line"
		expectLine(t, lines, "late line")
	})

	t.Run("unknown task", func(t *testing.T) {
		resp, err := c.Get(logsURL("nope", ""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})

	// A driver that keeps no time for its lines (the exec driver, this
	// fake) refuses since with a 400 that says so, rather than printing
	// every line as if it were in the window.
	t.Run("since without line times", func(t *testing.T) {
		resp, err := c.Get(logsURL("t-1", "?since=2026-11-25T02:00:00Z"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "keeps no time for its log lines; drop --since and --until") {
			t.Errorf("got %d %s, want a 400 that says why", resp.StatusCode, body)
		}
	})

	t.Run("bad tail", func(t *testing.T) {
		resp, err := c.Get(logsURL("t-1", "?tail=x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
}

func expectLine(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil || strings.TrimSuffix(line, "\n") != want {
		t.Fatalf("read %q, %v; want %q", line, err, want)
	}
}
