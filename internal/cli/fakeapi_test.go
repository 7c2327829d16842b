package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// fakeManager is a small in-memory stand-in for a manager's API. It runs
// every task it creates at once, so deploys converge on the next query.
type fakeManager struct {
	mu    sync.Mutex
	index uint64
	apps  map[string]*types.App
	tasks []*types.Task
	nodes []*types.Node
	logs  map[string]string // task ID -> output; missing: 502
	// healthOutput, when set, is the failing check's output of a rejected
	// task's verdict.
	healthOutput string
	deleted      map[string]int // app -> GETs left before it is gone
	scaled       []string       // "app/service=N"
	volumes      bool           // last DELETE's ?volumes
	startFor     func(*types.Service) types.TaskState
	pid          int // reported by /v1/status
	listings     int // GET /v1/tasks answered
	// pendingReason is given to the tasks startFor leaves pending.
	pendingReason string
	pins          []*types.VolumePin // served and removed by the pin routes (pins_test.go)

	// Cluster administration.
	tokens   api.Tokens
	members  []api.Member
	snapshot []byte // served by GET /v1/snapshot; nil: 500
	restored []byte // body of the last POST /v1/snapshot
	// adminToken, when set, is the bearer token every request must carry.
	adminToken string
	gotToken   string // the last bearer token presented

	// deployments, when set, answers GET /v1/deployments for an app (nil:
	// 404, a manager from before deployments).
	deployments func(app *types.App) []*api.Deployment
	eventLog    []api.Event // GET /v1/events

	images *fakeImageRecords // the image routes (fakeimages_test.go)
	dev    bool              // /v1/status says a dev cluster
	life   *fakeLifecycle    // the lifecycle verbs (lifecycle_test.go)

	// up's and down's flags (up_flags_test.go).
	submitQuery url.Values     // the query of the last PUT /v1/apps/{name}
	deleteQuery url.Values     // the query of the last DELETE /v1/apps/{name}
	planQuery   url.Values     // the query of the last dry run
	exitCodes   map[string]int // service -> exit code of its tasks startFor ends
	output      map[string]string
	stopCode    *int // the exit code of a task the fake stops (nil: none)

	runs []api.RunRequest // berth run's requests (oneoff_test.go)
}

func newFakeManager(t *testing.T) (*fakeManager, string) {
	f := &fakeManager{
		apps:    map[string]*types.App{},
		deleted: map[string]int{},
		logs:    map[string]string{},
		nodes:   []*types.Node{{ID: "node1id0000", Name: "laptop"}},
		images:  newFakeImageRecords(),
	}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeManager) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", f.status)
	mux.HandleFunc("GET /v1/apps", f.listApps)
	mux.HandleFunc("GET /v1/apps/{name}", f.getApp)
	mux.HandleFunc("PUT /v1/apps/{name}", f.putApp)
	mux.HandleFunc("DELETE /v1/apps/{name}", f.deleteApp)
	mux.HandleFunc("POST /v1/apps/{name}/services/{service}/scale", f.scale)
	mux.HandleFunc("GET /v1/tasks", f.listTasks)
	mux.HandleFunc("GET "+api.PathDeployments, f.listDeployments)
	mux.HandleFunc("POST "+api.PathServiceRollback, f.rollback)
	mux.HandleFunc("POST "+api.PathServicePromote, f.promote)
	mux.HandleFunc("POST "+api.PathAppPlan, f.plan)
	mux.HandleFunc("GET "+api.PathEvents, f.events)
	mux.HandleFunc("GET /v1/tasks/{id}/logs", f.taskLogs)
	mux.HandleFunc("GET /v1/nodes", f.listNodes)
	mux.HandleFunc("GET "+api.PathVolumePins, f.listPins)
	mux.HandleFunc("DELETE "+api.PathServicePins, f.unpin)
	mux.HandleFunc("GET "+api.PathTokens, f.getTokens)
	mux.HandleFunc("POST "+api.PathTokenRotate, f.rotateToken)
	mux.HandleFunc("GET "+api.PathMembers, f.listMembers)
	mux.HandleFunc("GET "+api.PathSnapshot, f.saveSnapshot)
	mux.HandleFunc("POST "+api.PathSnapshot, f.restoreSnapshot)
	f.images.register(mux, f)
	f.lifecycleRoutes(mux)                         // lifecycle_test.go
	mux.HandleFunc("POST "+api.PathAppRuns, f.run) // oneoff_test.go
	return f.authenticate(mux)
}

// authenticate answers 401 when adminToken is set and the request does
// not carry it, as a manager off loopback does.
func (f *fakeManager) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		want := f.adminToken
		f.gotToken = strings.TrimPrefix(r.Header.Get(api.HeaderAuthorization), "Bearer ")
		got := f.gotToken
		f.mu.Unlock()
		if want != "" && got != want {
			f.fail(w, http.StatusUnauthorized, "no admin token or client certificate was presented")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeManager) getTokens(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply(w, 200, f.tokens)
}

func (f *fakeManager) rotateToken(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var req api.RotateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.fail(w, 400, err.Error())
		return
	}
	switch req.Role {
	case "worker":
		f.tokens.Worker += "-rotated"
	case "manager":
		f.tokens.Manager += "-rotated"
	default:
		f.fail(w, 400, "role must be worker or manager")
		return
	}
	f.reply(w, 200, f.tokens)
}

func (f *fakeManager) listMembers(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply(w, 200, f.members)
}

func (f *fakeManager) saveSnapshot(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.snapshot == nil {
		f.fail(w, 500, "raft snapshot failed: disk full")
		return
	}
	_, _ = w.Write(f.snapshot)
}

func (f *fakeManager) restoreSnapshot(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.fail(w, 400, err.Error())
		return
	}
	f.restored = b
	f.reply(w, 200, struct{}{})
}

func (f *fakeManager) reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(f.index, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeManager) fail(w http.ResponseWriter, code int, msg string) {
	f.reply(w, code, api.ErrorBody{Error: msg})
}

func (f *fakeManager) status(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply(w, 200, api.Status{NodeName: "fake", Leader: true, Index: f.index, PID: f.pid, Dev: f.dev})
}

func (f *fakeManager) listApps(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []*types.App{}
	for _, a := range f.apps {
		out = append(out, a)
	}
	f.reply(w, 200, out)
}

func (f *fakeManager) getApp(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.PathValue("name")
	a := f.apps[name]
	if a != nil && a.Deleting {
		if f.deleted[name] == 0 {
			delete(f.apps, name)
			a = nil
		}
		f.deleted[name]--
	}
	if a == nil {
		f.fail(w, 404, "app "+name+" not found")
		return
	}
	f.reply(w, 200, a)
}

func (f *fakeManager) putApp(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var a types.App
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
		f.fail(w, 400, err.Error())
		return
	}
	f.submitQuery = r.URL.Query()
	resp := api.SubmitResponse{}
	old := f.apps[a.Name]
	for _, s := range a.Services {
		s.Version = 1
		if old != nil && old.Service(s.Name) != nil {
			s.Version = old.Service(s.Name).Version
			resp.Unchanged = append(resp.Unchanged, s.Name)
			continue
		}
		resp.Changed = append(resp.Changed, s.Name)
	}
	a.Version = 1
	f.apps[a.Name] = &a
	f.reconcile(&a)
	resp.App, resp.Index = &a, f.index
	f.reply(w, 200, resp)
}

// reconcile gives every replica of every service a task, started per
// startFor (running by default).
func (f *fakeManager) reconcile(a *types.App) {
	for _, s := range a.Services {
		for slot := 1; slot <= s.Replicas; slot++ {
			if f.hasTask(a.Name, s.Name, slot) {
				continue
			}
			f.index++
			state := types.TaskRunning
			if f.startFor != nil {
				state = f.startFor(s)
			}
			reason := ""
			if state == types.TaskPending {
				reason = f.pendingReason
			}
			t := &types.Task{
				ID: fmt.Sprintf("t%d", f.index), App: a.Name, Service: s.Name, Slot: slot,
				ServiceVersion: s.Version, NodeID: "node1id0000", DesiredState: types.DesiredRunning,
				State: state, CreateIndex: f.index, PendingReason: reason,
			}
			if code, ok := f.exitCodes[s.Name]; ok && state.Terminal() {
				t.ExitCode, t.FinishedAt = &code, time.Unix(int64(f.index), 0)
			}
			if out, ok := f.output[s.Name]; ok {
				f.logs[t.ID] = out
			}
			f.tasks = append(f.tasks, t)
		}
		s.Status = f.judge(a.Name, s)
	}
}

// judge stands in for the controller's verdict, for the states startFor
// gives: up when every replica runs or completed, failed when one was
// rejected, else converging.
func (f *fakeManager) judge(app string, s *types.Service) *types.ServiceStatus {
	st := &types.ServiceStatus{Version: s.Version, State: types.ServiceUp}
	for _, t := range f.tasks {
		if t.App != app || t.Service != s.Name || t.Slot > s.Replicas || t.ServiceVersion != s.Version {
			continue
		}
		switch t.State {
		case types.TaskRunning, types.TaskComplete:
		case types.TaskRejected:
			return &types.ServiceStatus{Version: s.Version, State: types.ServiceFailed, TaskID: t.ID, TaskName: t.Name(),
				HealthOutput: f.healthOutput,
				Reason:       "replica " + t.Name() + " was rejected: " + orUnknown(t.Error)}
		default:
			st.State = types.ServiceConverging
		}
	}
	return st
}

func (f *fakeManager) hasTask(app, svc string, slot int) bool {
	for _, t := range f.tasks {
		if t.App == app && t.Service == svc && t.Slot == slot && !t.State.Terminal() {
			return true
		}
	}
	return false
}

func (f *fakeManager) deleteApp(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.PathValue("name")
	a := f.apps[name]
	if a == nil {
		f.fail(w, 404, "app "+name+" not found")
		return
	}
	f.index++
	a.Deleting, f.volumes = true, r.URL.Query().Get("volumes") == "true"
	f.deleteQuery = r.URL.Query()
	f.deleted[name] = 1 // one more look before it is gone
	for _, t := range f.tasks {
		if t.App == name {
			t.DesiredState = types.DesiredShutdown // stopped once listed (see listTasks)
		}
	}
	f.reply(w, 200, struct{}{})
}

func (f *fakeManager) scale(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var req api.ScaleRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.fail(w, 400, err.Error())
		return
	}
	a := f.apps[r.PathValue("name")]
	if a == nil || a.Service(r.PathValue("service")) == nil {
		f.fail(w, 404, "service "+r.PathValue("service")+" not found")
		return
	}
	a.Service(r.PathValue("service")).Replicas = req.Replicas
	for _, t := range f.tasks {
		if t.App == a.Name && t.Service == r.PathValue("service") && t.Slot > req.Replicas {
			t.DesiredState = types.DesiredShutdown // stopped once listed (see listTasks)
		}
	}
	f.scaled = append(f.scaled, fmt.Sprintf("%s/%s=%d", a.Name, r.PathValue("service"), req.Replicas))
	f.reconcile(a)
	f.reply(w, 200, struct{}{})
}

func (f *fakeManager) listTasks(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []*types.Task{}
	for _, t := range f.tasks {
		if app := r.URL.Query().Get("app"); app == "" || app == t.App {
			out = append(out, t)
		}
	}
	f.reply(w, 200, out)
	f.listings++
	// Tasks asked to stop have stopped by the next look.
	for _, t := range f.tasks {
		if t.DesiredState == types.DesiredShutdown && !t.State.Terminal() {
			t.State, t.ExitCode = types.TaskShutdown, f.stopCode
		}
	}
}

func (f *fakeManager) listDeployments(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	app := f.apps[r.URL.Query().Get("app")]
	if f.deployments == nil || app == nil {
		f.fail(w, 404, "not found")
		return
	}
	f.reply(w, 200, f.deployments(app))
}

// rollback bumps the service's version, as a rollback does, and answers
// with its deployment.
func (f *fakeManager) rollback(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	app := f.apps[r.PathValue("name")]
	if app == nil || app.Service(r.PathValue("service")) == nil {
		f.fail(w, 404, "not found")
		return
	}
	svc := app.Service(r.PathValue("service"))
	svc.Version++
	f.reply(w, 200, &api.Deployment{ID: types.DeploymentID(app.Name, svc.Name, svc.Version), App: app.Name, Service: svc.Name,
		FromVersion: svc.Version - 1, ToVersion: svc.Version, Rollback: true, State: api.DeploymentRunning})
}

// plan answers a dry run: a service not stored is created, one whose
// image differs updated; nothing is stored.
func (f *fakeManager) plan(w http.ResponseWriter, r *http.Request) {
	var app types.App
	if err := json.NewDecoder(r.Body).Decode(&app); err != nil {
		f.fail(w, 400, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.planQuery = r.URL.Query()
	p := api.Plan{App: app.Name}
	old := f.apps[app.Name]
	for _, s := range app.Services {
		sp := api.ServicePlan{Name: s.Name, Action: api.PlanCreate, Start: s.Replicas}
		if old != nil && old.Service(s.Name) != nil {
			sp = api.ServicePlan{Name: s.Name, Action: api.PlanUnchanged}
			if prev := old.Service(s.Name); prev.Image != s.Image {
				sp = api.ServicePlan{Name: s.Name, Action: api.PlanUpdate, Fields: []string{"image"}, FromVersion: prev.Version,
					ToVersion: prev.Version + 1, Start: s.Replicas, Stop: s.Replicas}
			}
		}
		p.Services = append(p.Services, sp)
	}
	f.reply(w, 200, p)
}

// events answers from f.eventLog with a gap below its first index.
func (f *fakeManager) events(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := api.EventsResponse{Events: []api.Event{}, Index: since}
	for _, e := range f.eventLog {
		if e.Index > since {
			resp.Events = append(resp.Events, e)
			resp.Index = e.Index
		}
	}
	if len(f.eventLog) > 0 && since > 0 && since+1 < f.eventLog[0].Index {
		resp.Gap = &api.EventGap{From: since + 1, To: f.eventLog[0].Index - 1}
	}
	f.reply(w, 200, resp)
}

// promote answers with the service's deployment, promoted.
func (f *fakeManager) promote(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	app := f.apps[r.PathValue("name")]
	if app == nil || app.Service(r.PathValue("service")) == nil {
		f.fail(w, 404, "not found")
		return
	}
	svc := app.Service(r.PathValue("service"))
	f.reply(w, 200, &api.Deployment{ID: types.DeploymentID(app.Name, svc.Name, svc.Version), App: app.Name, Service: svc.Name,
		ToVersion: svc.Version, Canaries: 1, Promoted: true, State: api.DeploymentRunning})
}

func (f *fakeManager) listNodes(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply(w, 200, f.nodes)
}

func (f *fakeManager) taskLogs(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	out, ok := f.logs[r.PathValue("id")]
	f.mu.Unlock()
	if !ok {
		f.fail(w, 502, "node laptop does not answer")
		return
	}
	_, _ = io.Copy(w, strings.NewReader(out))
}

// addTask adds a running task, as if the manager had just placed it.
func (f *fakeManager) addTask(app, svc string, slot int, logs string) *types.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.index++
	t := &types.Task{
		ID: fmt.Sprintf("t%d", f.index), App: app, Service: svc, Slot: slot, ServiceVersion: 1,
		NodeID: "node1id0000", DesiredState: types.DesiredRunning, State: types.TaskRunning, CreateIndex: f.index,
	}
	f.tasks = append(f.tasks, t)
	f.logs[t.ID] = logs
	return t
}
