package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
)

func TestJoinsOnceThenRestartsWithItsIdentity(t *testing.T) {
	m := newFakeManager(t)
	m.failJoins = 2 // no leader yet: the agent retries
	fd := newFakeDriver("fake")
	cfg := testConfig(t, m, fd)
	a1, stop1 := runAgent(t, cfg)
	waitFor(t, "the joined node registered", func() bool { return m.known(a1.NodeID()) })

	id, err := pki.LoadIdentity(pkiDir(cfg.DataDir))
	if err != nil {
		t.Fatalf("no identity saved after joining: %v", err)
	}
	if id.NodeID != a1.NodeID() || id.Role != pki.RoleWorker || len(id.NodeID) != 16 {
		t.Errorf("saved identity: node %q role %s; want the agent's 16-digit ID %q as a worker", id.NodeID, id.Role, a1.NodeID())
	}
	stop1()

	cfg.JoinToken = "" // a joined node needs no token
	a2, _ := runAgent(t, cfg)
	if a2.NodeID() != a1.NodeID() {
		t.Errorf("node ID after restart = %s, want %s", a2.NodeID(), a1.NodeID())
	}
	waitFor(t, "the second registration", func() bool {
		n := 0
		m.read(func() { n = m.registrations })
		return n == 2
	})
	m.read(func() {
		if m.joins != 3 {
			t.Errorf("join requests = %d, want 3 (two refused while busy, then one; none on restart)", m.joins)
		}
		if m.forbidden != 0 {
			t.Errorf("%d agent requests refused for their certificate, want none", m.forbidden)
		}
	})
}

func TestJoinTakesTheNodeIDTheManagerGives(t *testing.T) {
	m := newFakeManager(t)
	m.assignID = "node-from-manager"
	cfg := testConfig(t, m, newFakeDriver("fake"))
	a1, stop1 := runAgent(t, cfg)
	if a1.NodeID() != m.assignID {
		t.Fatalf("node ID = %s, want %s from the manager", a1.NodeID(), m.assignID)
	}
	waitFor(t, "the node registered under the given ID", func() bool { return m.known(m.assignID) })
	stop1()

	st, err := openStore(cfg.DataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := st.NodeID()
	st.Close()
	if err != nil || kept != m.assignID {
		t.Errorf("local state keeps node ID %q (%v), want %s", kept, err, m.assignID)
	}
	cfg.JoinToken = ""
	if a2, _ := runAgent(t, cfg); a2.NodeID() != m.assignID {
		t.Errorf("node ID after restart = %s, want %s", a2.NodeID(), m.assignID)
	}
}

func TestNewRefusesMissingOrUnfitCredentials(t *testing.T) {
	m := newFakeManager(t)
	managerToken, err := pki.NewToken(m.ca.Fingerprint(), pki.RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		addr, token string
		want        string
	}{
		{"no token", m.addr(), "", errNotJoined.Error()},
		{"not a token", m.addr(), "letmein", "read the join token: token: wrong format"},
		{"manager token", m.addr(), managerToken, "token is for a manager, not a worker"},
		{"plain HTTP address", "http://" + m.addr(), m.token, "is not a cluster address"},
		{"no port", "127.0.0.1", m.token, "is not host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, m, newFakeDriver("fake"))
			cfg.ManagerAddr, cfg.JoinToken = tt.addr, tt.token
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestJoinIsRefused(t *testing.T) {
	m := newFakeManager(t)
	other := newFakeManager(t) // another cluster, with its own CA
	wrongSecret, err := pki.NewToken(m.ca.Fingerprint(), pki.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	plain := httptest.NewServer(http.NotFoundHandler()) // an API port on loopback
	t.Cleanup(plain.Close)

	tests := []struct {
		name        string
		addr, token string
		wantJoins   int // join requests m saw: refusals are not retried
		want        string
		wantIs      error
	}{
		{"wrong token", m.addr(), wrongSecret, 1, "refused to let this node join: " + pki.ErrTokenRejected.Error(), nil},
		{"manager of another cluster", m.addr(), other.token, 0, "is not part of the cluster the join token names", pki.ErrPinMismatch},
		{"not a TLS port", plain.Listener.Addr().String(), m.token, 0, "does not speak TLS", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := m.joinCount()
			cfg := testConfig(t, m, newFakeDriver("fake"))
			cfg.ManagerAddr, cfg.JoinToken = tt.addr, tt.token
			err := runUntilError(t, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want an error containing %q", err, tt.want)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Run: %v, want errors.Is %v", err, tt.wantIs)
			}
			if n := m.joinCount() - before; n != tt.wantJoins {
				t.Errorf("join requests = %d, want %d", n, tt.wantJoins)
			}
			if _, err := pki.LoadIdentity(pkiDir(cfg.DataDir)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("identity after a refused join: %v, want none saved", err)
			}
		})
	}
}

// runUntilError runs an agent that is expected to give up on its own, and
// returns Run's error.
func runUntilError(t *testing.T, cfg Config) error {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("Run kept retrying a join that cannot succeed")
	}
	return err
}

func TestAgentAPIAdmitsManagersOnly(t *testing.T) {
	m := newFakeManager(t)
	other := newFakeManager(t)
	a, _ := runAgent(t, testConfig(t, m, newFakeDriver("fake")))
	url := "https://" + a.Addr() + strings.Replace(api.PathAgentTaskLogs, "{id}", "nope", 1)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(m.ca.CertPEM)
	noCert := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: pki.RoleWorker.ServerName()}
	asWorker := m.issue(t, pki.RoleWorker, "another-node").ClientTLS(pki.RoleWorker.ServerName())
	foreign := other.issue(t, pki.RoleManager, "manager-1").ClientTLS(pki.RoleWorker.ServerName())
	foreign.RootCAs = pool // it trusts the agent; the agent must not trust it

	tests := []struct {
		name       string
		client     *http.Client
		wantStatus int // 0: the handshake fails
	}{
		{"no certificate", clientWith(t, noCert), 0},
		{"certificate of another cluster", clientWith(t, foreign), 0},
		{"worker certificate", clientWith(t, asWorker), http.StatusForbidden},
		{"manager certificate", managerHTTP(t, m), http.StatusNotFound}, // past auth: no such task
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.client.Get(url)
			if tt.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got %d, want the TLS handshake refused", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}
}

func TestManagerHostPort(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"127.0.0.1:7702", "127.0.0.1:7702", true},
		{"https://m1.example:7702/", "m1.example:7702", true},
		{"[::1]:7702", "[::1]:7702", true},
		{"http://127.0.0.1:7702", "", false},
		{"127.0.0.1", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := managerHostPort(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("managerHostPort(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestJoinWaitsForAnUnreachableManager(t *testing.T) {
	m := newUnstartedFakeManager(t)
	addr := m.srv.Listener.Addr().String()
	m.srv.Listener.Close() // nothing listens there yet: connections are refused
	logs := &recordingHandler{}
	cfg := testConfig(t, m, newFakeDriver("fake"))
	cfg.ManagerAddr, cfg.Logger = addr, slog.New(logs)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v, want nil on shutdown", err)
		}
	})
	waitFor(t, "two failed join attempts", func() bool { return logs.count("join the cluster failed; will retry") >= 2 })

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	m.srv.Listener = ln
	m.srv.StartTLS()
	waitFor(t, "the node joined and registered", func() bool { return a.Addr() != "" && m.known(a.NodeID()) })
}

// recordingHandler is a slog handler that counts messages.
type recordingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	return nil
}

func (h *recordingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[msg]
}

// An agent keeps the managers' addresses it learned: restarted with a
// --join address where no manager answers any more, it reaches the cluster
// through one it knows.
func TestRestartFindsManagersItLearned(t *testing.T) {
	m := newFakeManager(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	m.update(func() { m.managers = []string{dead, m.addr()} })
	cfg := testConfig(t, m, newFakeDriver("fake"))
	a, stop := runAgent(t, cfg)
	waitFor(t, "registered", func() bool { return m.known(a.NodeID()) })
	stop()
	before := 0
	m.read(func() { before = m.registrations })

	cfg.ManagerAddr, cfg.JoinToken = dead, ""
	runAgent(t, cfg)
	waitFor(t, "registered again through a known manager", func() bool {
		n := 0
		m.read(func() { n = m.registrations })
		return n > before
	})
}
