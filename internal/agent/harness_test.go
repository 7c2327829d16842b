package agent

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
)

// waitFor polls cond until it holds, failing the test after a deadline
// generous enough for a loaded 2-core machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testConfig is an agent config against m with fast timings and fd as the
// only driver.
func testConfig(t *testing.T, m *fakeManager, fd *fakeDriver) Config {
	return Config{
		ManagerAddr:     m.addr(),
		JoinToken:       m.token,
		Name:            "n1",
		DataDir:         t.TempDir(),
		Drivers:         []string{fd.name},
		DriverOverrides: map[string]driver.Driver{fd.name: fd},
		Timing: Timing{
			PollEvery:     100 * time.Millisecond,
			ReportWait:    20 * time.Millisecond,
			ReportMaxWait: 200 * time.Millisecond,
			RetryEvery:    20 * time.Millisecond,
		},
	}
}

// runAgent starts an agent and returns it with a function that stops it and
// checks that Run returned cleanly. The agent is also stopped at cleanup.
func runAgent(t *testing.T, cfg Config) (*Agent, func()) {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil on shutdown", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	waitFor(t, "the agent API to listen", func() bool { return a.Addr() != "" })
	return a, stop
}

// managerHTTP is an HTTP client that dials agents as a manager of m's
// cluster does: with a manager certificate, verifying the worker role.
func managerHTTP(t *testing.T, m *fakeManager) *http.Client {
	t.Helper()
	return clientWith(t, m.issue(t, pki.RoleManager, "manager-1").ClientTLS(pki.RoleWorker.ServerName()))
}

func clientWith(t *testing.T, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// service is a minimal service spec run by the fake driver.
func service(name string, version uint64) *types.Service {
	return &types.Service{Name: name, Driver: "fake", Image: name + ":1", Mode: types.ModeReplicated, Version: version}
}
