package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
)

// startServer runs a real manager (Raft, store, controllers, HTTP) on
// loopback with a fresh data dir, and returns a client for it.
func startServer(t *testing.T) (*Server, *api.Client) {
	t.Helper()
	return startServerWith(t, func(*Config) {})
}

// startServerWith is startServer with a config change (limits, say).
func startServerWith(t *testing.T, change func(*Config)) (*Server, *api.Client) {
	t.Helper()
	cfg := Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", ClusterAddr: "127.0.0.1:0", HeartbeatTTL: time.Minute}
	change(&cfg)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with: %v", err)
		}
	})
	c := api.NewClient(s.Addr(), api.WithToken(s.AdminToken()))
	waitFor(t, 10*time.Second, "leader", func() bool {
		st, err := c.Status(context.Background())
		return err == nil && st.Leader
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := s.WaitWorkerToken(wctx); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// joinNode joins the cluster as a worker node, as an agent does (pinned
// TLS, token, CSR), and returns a client that speaks mutual TLS with the
// node certificate on the cluster port, and the node's ID.
func joinNode(t *testing.T, s *Server, name string) (*api.Client, string) {
	t.Helper()
	id := joinIdentity(t, s, name)
	return api.NewClient(s.ClusterAddr(), api.WithTLS(id.ClientTLS(pki.RoleManager.ServerName()))), id.NodeID
}

// joinIdentity joins the cluster as a worker node and returns its identity.
func joinIdentity(t *testing.T, s *Server, name string) *pki.Identity {
	t.Helper()
	ctx := context.Background()
	tok, err := pki.ParseToken(s.WorkerToken())
	if err != nil {
		t.Fatal(err)
	}
	nodeID := fmt.Sprintf("%016x", rand.Uint64())
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(nodeID, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := api.NewClient(s.ClusterAddr(), api.WithTLS(pki.PinnedTLS(tok.Fingerprint))).Join(ctx,
		api.JoinRequest{Token: s.WorkerToken(), Role: "worker", Name: name, CSR: csrPEM})
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.NewIdentity(resp.CAPEM, resp.CertPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID != resp.NodeID {
		t.Fatalf("joined as %s, the certificate names %s", resp.NodeID, id.NodeID)
	}
	return id
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAppLifecycleThroughAPI(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	nc, _ := joinNode(t, s, "n1")
	reg, err := nc.RegisterNode(ctx, types.Node{Name: "n1", Address: "127.0.0.1:1", Drivers: []string{"docker"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.SubmitApp(ctx, validApp())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 2 {
		t.Fatalf("first submit changed %v, want both services", res.Changed)
	}
	got, err := c.GetApp(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Secrets["key"].Data) != 0 {
		t.Fatalf("GET returned secret content")
	}
	// The agent's blocking query returns the placed tasks with their secrets.
	var nt *api.NodeTasks
	waitFor(t, 10*time.Second, "tasks placed on n1", func() bool {
		nt, _, err = nc.NodeTasks(ctx, reg.NodeID, api.QueryOptions{})
		return err == nil && len(nt.Tasks) == 1 // web: published port, one node; job: exec not offered
	})
	if string(nt.Apps["shop"].Secrets["key"].Data) != "s3cret" {
		t.Fatalf("agent did not get the secret its task mounts")
	}
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: "shop", Service: "job"})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("job tasks: %v %v", tasks, err)
	}
	waitFor(t, 10*time.Second, "pending reason for job", func() bool {
		tk, err := c.GetTask(ctx, tasks[0].ID)
		return err == nil && strings.Contains(tk.PendingReason, "waiting for web")
	})

	// Resubmitting the same app changes nothing.
	res, err = c.SubmitApp(ctx, validApp())
	if err != nil || len(res.Changed) != 0 || len(res.Unchanged) != 2 {
		t.Fatalf("resubmit: %+v %v", res, err)
	}
	if err := c.Scale(ctx, "shop", "web", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteApp(ctx, "shop", true); err != nil {
		t.Fatal(err)
	}
	// Acting as the agent: it stops the task it is no longer given, then removes the networks.
	for _, tk := range nt.Tasks {
		if err := nc.ReportStatus(ctx, reg.NodeID, []types.TaskStatus{{TaskID: tk.ID, State: types.TaskShutdown}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.GetApp(ctx, "shop"); err != nil {
		t.Fatalf("app purged before its tasks stopped and the node tore down: %v", err)
	}
	if err := nc.ReportTeardown(ctx, reg.NodeID, "shop"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "app purged", func() bool {
		_, err := c.GetApp(ctx, "shop")
		return errors.Is(err, api.ErrNotFound)
	})
}

func TestBlockingQueryWaitsForChange(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	_, meta, err := c.ListTasks(ctx, api.TaskQuery{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan uint64, 1)
	go func() {
		_, m, _ := c.ListTasks(ctx, api.TaskQuery{QueryOptions: api.QueryOptions{Index: max(meta.Index, 1), Wait: 20 * time.Second}})
		got <- m.Index
	}()
	select {
	case <-got:
		t.Fatal("blocking query answered before any change")
	case <-time.After(200 * time.Millisecond):
	}
	nc, _ := joinNode(t, s, "n1")
	if _, err := nc.RegisterNode(ctx, types.Node{Name: "n1", Address: "127.0.0.1:1", Drivers: []string{"exec"}}); err != nil {
		t.Fatal(err)
	}
	app := &types.App{Name: "a", Services: []*types.Service{{Name: "s", Driver: types.DriverExec, Command: []string{"sleep", "60"}, Replicas: 1}}}
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	select {
	case idx := <-got:
		if idx <= meta.Index {
			t.Fatalf("answered with index %d, not past %d", idx, meta.Index)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("blocking query did not answer after a change")
	}
}

func TestBadRequestsNameTheField(t *testing.T) {
	s, _ := startServer(t)
	expectErrors(t, s, []errorCase{
		{"invalid JSON", "PUT", "/v1/apps/a", `{"services": [`, 400, ""},
		{"unknown field", "PUT", "/v1/apps/a", `{"services": [], "replicaz": 3}`, 400, "replicaz"},
		{"wrong type", "PUT", "/v1/apps/a", `{"services": [{"name": "web", "replicas": "three"}]}`, 400, "services.replicas"},
		{"name mismatch", "PUT", "/v1/apps/a", `{"name": "b", "services": []}`, 400, "name"},
		{"empty body", "PUT", "/v1/apps/a", ``, 400, ""},
		{"no image", "PUT", "/v1/apps/a", `{"services": [{"name": "web", "replicas": 1}]}`, 400, "services.web.image"},
		{"negative scale", "POST", "/v1/apps/a/services/web/scale", `{"replicas": -2}`, 400, "replicas"},
		{"unknown app", "GET", "/v1/apps/nope", ``, 404, ""},
		{"bad index", "GET", "/v1/tasks?index=abc", ``, 400, "index"},
		{"bad wait", "GET", "/v1/tasks?index=1&wait=forever", ``, 400, "wait"},
		{"agent route not on the API port", "POST", "/v1/nodes/register", `{"node": {"name": "n", "address": "127.0.0.1:1"}}`, 404, ""},
		{"no such route", "GET", "/v1/nothing", ``, 404, ""},
	})
}

// errorCase is a request that must fail with status, naming field.
type errorCase struct {
	name, method, path, body string
	status                   int
	field                    string
}

// expectErrors sends each case with the admin token and checks the answer.
func expectErrors(t *testing.T, s *Server, cases []errorCase) {
	t.Helper()
	base := "http://" + s.Addr()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+s.AdminToken())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body api.ErrorBody
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Field != tc.field || body.Error == "" {
				t.Fatalf("got %d %+v, want %d naming %q", resp.StatusCode, body, tc.status, tc.field)
			}
		})
	}
}

func TestRequestSizeLimit(t *testing.T) {
	s, _ := startServer(t)
	big := bytes.Repeat([]byte("a"), api.MaxRequestBytes+10)
	body := `{"replicas": 1, "x": "` + string(big) + `"}`
	req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/v1/apps/a/services/web/scale", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("got %d %s, want 413", resp.StatusCode, b)
	}
}

func TestMetricsExposed(t *testing.T) {
	s, c := startServer(t)
	if _, err := c.ListApps(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Like the API beside it, /metrics needs a credential, on loopback too.
	anon, err := http.Get("http://" + s.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	anon.Body.Close()
	if anon.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a credential: %d, want 401", anon.StatusCode)
	}
	expectMetrics(t, s, `berth_tasks{state="running"}`, "berth_raft_apply_seconds_bucket", `berth_api_request_seconds_count{code="200",method="GET",route="GET /v1/apps"}`)
}

// expectMetrics reads s's /metrics with the admin token and checks that it
// holds every one of want.
func expectMetrics(t *testing.T, s *Server, want ...string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, w := range want {
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("metrics lack %s", w)
		}
	}
}

// TestHandshakesCountedAndResumed: the cluster port counts its TLS
// handshakes, and a node's second connection resumes its session.
func TestHandshakesCountedAndResumed(t *testing.T) {
	s, _ := startServer(t)
	cfg := joinIdentity(t, s, "n1").ClientTLS(pki.RoleManager.ServerName())
	for range 2 {
		// A client each: a connection each, one TLS configuration (and
		// session cache) for both. A worker may not read the status; the
		// handshake is what counts.
		_, _ = api.NewClient(s.ClusterAddr(), api.WithTLS(cfg)).Status(context.Background())
	}
	expectMetrics(t, s, `berth_tls_handshakes_total{listener="cluster",resumed="false"}`, `berth_tls_handshakes_total{listener="cluster",resumed="true"} 1`)
}

// TestRemoveUnknownMember: DELETE of a manager that is not a member answers
// 404 (it answered 200, as if something had been removed).
func TestRemoveUnknownMember(t *testing.T) {
	_, c := startServer(t)
	err := c.RemoveMember(context.Background(), "no-such-manager")
	if !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("remove unknown member: %v, want not found", err)
	}
}
