package agent

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// front is one listener of a fake manager's state: two fronts of one
// fakeManager are two managers of one cluster (same CA, same nodes). A
// front counts what it served and can stall like a frozen process.
type front struct {
	srv *httptest.Server
	// stalled fronts accept requests and never answer them, as a manager
	// stopped with SIGSTOP (the kernel still accepts its connections).
	stalled atomic.Bool
	release chan struct{}

	mu     sync.Mutex
	counts map[string]int // by route kind: "heartbeat", "tasks", "status", "register"
	hook   func(w http.ResponseWriter, r *http.Request) bool
}

// newFronts starts a fake manager behind n listeners; the managers it
// names to agents are all of them.
func newFronts(t *testing.T, n int) (*fakeManager, []*front) {
	t.Helper()
	m := newUnstartedFakeManager(t)
	mux := m.srv.Config.Handler
	fronts := make([]*front, n)
	for i := range fronts {
		f := &front{counts: map[string]int{}, release: make(chan struct{})}
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.count(r)
			if f.stalled.Load() {
				select {
				case <-f.release:
				case <-r.Context().Done():
				}
				return
			}
			if hook := f.getHook(); hook != nil && hook(w, r) {
				return
			}
			mux.ServeHTTP(w, r)
		})
		if i == 0 {
			m.srv.Config.Handler = handler
			f.srv = m.srv
		} else {
			f.srv = httptest.NewUnstartedServer(handler)
			f.srv.TLS = m.srv.TLS
		}
		f.srv.StartTLS()
		t.Cleanup(func() { f.unstall(); f.srv.Close() })
		fronts[i] = f
		m.managers = append(m.managers, f.srv.Listener.Addr().String())
	}
	return m, fronts
}

func (f *front) count(r *http.Request) {
	kind := "other"
	switch {
	case strings.HasSuffix(r.URL.Path, "/heartbeat"):
		kind = "heartbeat"
	case strings.HasSuffix(r.URL.Path, "/tasks") && r.Method == http.MethodGet:
		kind = "tasks"
	case strings.HasSuffix(r.URL.Path, "/status"):
		kind = "status"
	case strings.HasSuffix(r.URL.Path, "/register"):
		kind = "register"
	}
	f.mu.Lock()
	f.counts[kind]++
	f.mu.Unlock()
}

func (f *front) served(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[kind]
}

func (f *front) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *front) getHook() func(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hook
}

func (f *front) stall() { f.stalled.Store(true) }

func (f *front) unstall() {
	if f.stalled.Swap(false) {
		close(f.release)
	}
}

// An idle node (no task anywhere, so the manager's tables have index 0)
// must not spin on its blocking query: a manager that answers index 0 at
// once (as berth did for empty tables) gets a handful of queries, not
// thousands.
func TestIdleAgentDoesNotSpin(t *testing.T) {
	m, fronts := newFronts(t, 1)
	m.ttl = time.Minute // no heartbeats to speak of
	f := fronts[0]
	f.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/tasks") || r.URL.Query().Get("index") != "" {
			return false
		}
		// No index: answer at once, with the index of empty tables.
		w.Header().Set(api.HeaderIndex, "0")
		reply(w, api.NodeTasks{Tasks: []*types.Task{}})
		return true
	})
	fd := newFakeDriver("fake")
	runAgent(t, testConfig(t, m, fd))
	waitFor(t, "the first task query", func() bool { return f.served("tasks") > 0 })
	start, before := time.Now(), f.served("tasks")
	time.Sleep(2 * time.Second)
	n := f.served("tasks") - before
	rate := float64(n) / time.Since(start).Seconds()
	t.Logf("idle agent: %d task queries in 2s (%.1f/s)", n, rate)
	if n > 4 {
		t.Fatalf("idle agent made %d task queries in 2s, want a blocking query (at most a few)", n)
	}
}

// A manager that stops answering (SIGSTOP) while the agent talks to it:
// heartbeats, the blocking query and status reports fail over to another
// manager well within the TTL, and work placed meanwhile still runs.
func TestAgentFailsOverFromStalledManager(t *testing.T) {
	m, fronts := newFronts(t, 2)
	const ttl = 600 * time.Millisecond // heartbeats every 200ms
	m.ttl = ttl
	stuck, other := fronts[0], fronts[1]
	fd := newFakeDriver("fake")
	a, _ := runAgent(t, testConfig(t, m, fd))
	waitFor(t, "heartbeats", func() bool { return stuck.served("heartbeat") >= 2 })
	svc := service("web", 1)
	m.addService("app", svc)
	first := m.addTasks(a.NodeID(), "app", svc, "web", 1)
	waitFor(t, "the first task running", func() bool { return m.inState(types.TaskRunning, first...) })

	stuck.stall()
	stalledAt := time.Now()
	waitFor(t, "a heartbeat through the other manager", func() bool { return other.served("heartbeat") > 0 })
	failover := time.Since(stalledAt)
	t.Logf("heartbeats failed over after %s (TTL %s)", failover.Round(time.Millisecond), ttl)
	if failover > 2*ttl {
		t.Errorf("heartbeats reached the other manager %s after the stall, want within %s", failover, 2*ttl)
	}
	more := m.addTasks(a.NodeID(), "app", service("api", 1), "api", 1)
	m.addService("app", service("api", 1))
	waitFor(t, "a task placed after the stall running", func() bool { return m.inState(types.TaskRunning, more...) })
	if other.served("tasks") == 0 || other.served("status") == 0 {
		t.Errorf("the other manager served %d task queries and %d reports", other.served("tasks"), other.served("status"))
	}
}

// A manager that answers 5xx (no leader, a broken one) is left for another.
func TestAgentFailsOverOnServerErrors(t *testing.T) {
	m, fronts := newFronts(t, 2)
	m.ttl = 300 * time.Millisecond
	bad, good := fronts[0], fronts[1]
	fd := newFakeDriver("fake")
	runAgent(t, testConfig(t, m, fd))
	waitFor(t, "heartbeats", func() bool { return bad.served("heartbeat") >= 1 })
	bad.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		replyError(w, http.StatusServiceUnavailable, "the cluster has no leader now")
		return true
	})
	waitFor(t, "heartbeats through the other manager", func() bool { return good.served("heartbeat") >= 2 })
}
