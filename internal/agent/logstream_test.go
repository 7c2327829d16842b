package agent

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// A manager that asks for heartbeats gets the followed log as frames, with
// the interval in the answer, so it can tell a quiet task from a frozen
// node; the lines read back are the same.
func TestFollowedLogsCarryHeartbeats(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	svc := service("web", 1)
	m.addService("app", svc)
	ids := m.addTasks(a.NodeID(), "app", svc, "t", 1)
	waitFor(t, "the task running", func() bool { return m.inState(types.TaskRunning, ids...) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	u := "https://" + a.Addr() + strings.Replace(api.PathAgentTaskLogs, "{id}", "t-1", 1) + "?follow=true"
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set(api.HeaderHeartbeat, "1")
	resp, err := managerHTTP(t, m).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get(api.HeaderHeartbeat); got != api.HeartbeatEvery.String() {
		t.Fatalf("answer's %s = %q, want %s", api.HeaderHeartbeat, got, api.HeartbeatEvery)
	}
	body := api.ReadStream(resp, cancel)
	defer body.Close()
	lines := bufio.NewReader(body)
	for _, want := range []string{"t-1 line 1", "t-1 line 2", "t-1 line 3"} {
		expectLine(t, lines, want)
	}
	fd.logLines <- "late line"
	expectLine(t, lines, "late line")
}
