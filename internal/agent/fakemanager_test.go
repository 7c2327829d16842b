package agent

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/testregistry"
	"github.com/berth-dev/berth/internal/types"
)

// fakeManager serves the cluster port of a manager from memory: the join
// endpoint, and the agent endpoints over mutual TLS with the node ID taken
// from the client certificate, as a real manager does. Every change bumps
// its index, which wakes blocking NodeTasks queries.
type fakeManager struct {
	srv   *httptest.Server
	ttl   time.Duration
	ca    *pki.CA
	token string // the current worker token
	// managers is what register answers as the managers' cluster addresses.
	managers []string
	// workerHash is the stored hash of the worker token's secret.
	workerHash string

	mu            sync.Mutex
	index         uint64
	changed       chan struct{} // closed and replaced on every change
	nodes         map[string]types.Node
	registrations int
	heartbeats    int
	beatTTL       time.Duration // the TTL heartbeats answer with (0: none)
	order         []string      // task IDs in creation order
	tasks         map[string]*types.Task
	services      map[string]*types.Service
	apps          map[string]*api.AppResources
	reports       [][]types.TaskStatus
	teardowns     []string
	failReports   int               // answer this many ReportStatus calls with 500
	refuseJoin    bool              // answer registrations with 503
	refused       int               // registrations answered so
	joins         int               // join requests received
	failJoins     int               // answer this many join requests with 503
	assignID      string            // when set, joining nodes get this ID, not their CSR's CN
	forbidden     int               // agent requests refused for their certificate
	certTTL       time.Duration     // lifetime of issued certificates (0: an hour)
	renewals      int               // renewals signed
	joinLabels    map[string]string // the labels of the last join
	// netmap is what GET /v1/netmap answers (netmap_test.go); failNetMap
	// answers this many of its calls with 500.
	netmap     api.NetworkMap
	failNetMap int
	noNetMap   bool // answer 404, as a manager without the overlay
	// registry serves /v2/ as the managers' registry does, to workers.
	registry *testregistry.Registry
}

func newFakeManager(t *testing.T) *fakeManager {
	t.Helper()
	m := newUnstartedFakeManager(t)
	m.srv.StartTLS()
	return m
}

// newUnstartedFakeManager is a fake manager whose server is not started yet:
// its CA and token exist, its listener is bound but does not accept.
func newUnstartedFakeManager(t testing.TB) *fakeManager {
	t.Helper()
	ca, err := pki.NewCA("test-cluster", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	token, err := pki.NewToken(ca.Fingerprint(), pki.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeManager{
		ttl:        300 * time.Millisecond,
		ca:         ca,
		token:      token,
		workerHash: pki.HashToken(mustParseToken(token).Secret),
		index:      1,
		changed:    make(chan struct{}),
		nodes:      map[string]types.Node{},
		tasks:      map[string]*types.Task{},
		services:   map[string]*types.Service{},
		apps:       map[string]*api.AppResources{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathJoin, m.join)
	mux.HandleFunc("POST "+api.PathNodeRegister, m.worker(m.register))
	mux.HandleFunc("POST "+api.PathHeartbeat, m.worker(m.heartbeat))
	mux.HandleFunc("GET "+api.PathNodeTasks, m.worker(m.nodeTasks))
	mux.HandleFunc("POST "+api.PathNodeStatus, m.worker(m.status))
	mux.HandleFunc("POST "+api.PathTeardown, m.worker(m.teardown))
	mux.HandleFunc("POST "+api.PathNodeRenew, m.worker(m.renew))
	mux.HandleFunc("GET "+api.PathNetworkMap, m.worker(m.networkMap))
	m.registry = testregistry.New()
	m.registry.Admit = requireWorker
	mux.Handle("/v2/", m.registry)
	m.srv = httptest.NewUnstartedServer(mux)
	// Joining nodes have no certificate yet: the handshake admits them,
	// and the agent routes check the certificate per request.
	m.srv.TLS = m.issue(t, pki.RoleManager, "manager-1").ServerTLS(tls.VerifyClientCertIfGiven)
	t.Cleanup(m.srv.Close)
	return m
}

// addr is the manager's cluster address, host:port.
func (m *fakeManager) addr() string { return m.srv.Listener.Addr().String() }

// issue makes an identity of the fake cluster for node id with role.
func (m *fakeManager) issue(t testing.TB, role pki.Role, id string) *pki.Identity {
	t.Helper()
	keyPEM, csrPEM, err := pki.NewKeyAndCSR(id, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := m.ca.SignCSR(csrPEM, id, role, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := pki.NewIdentity(m.ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ident
}

// join admits a node that presents the worker token, as a manager's
// cluster port does: it signs the CSR for the CSR's CN as node ID.
func (m *fakeManager) join(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fail, assigned := false, ""
	m.read(func() {
		m.joins++
		m.joinLabels = req.Labels
		assigned = m.assignID
		if fail = m.failJoins > 0; fail {
			m.failJoins--
		}
	})
	if fail {
		replyError(w, http.StatusServiceUnavailable, "no leader")
		return
	}
	tok, err := pki.ParseToken(req.Token)
	if err == nil {
		err = tok.Verify(m.ca.Fingerprint(), m.workerHash)
	}
	if err != nil {
		replyError(w, http.StatusUnauthorized, err.Error())
		return
	}
	id := assigned
	if id == "" {
		if id, err = csrCommonName(req.CSR); err != nil {
			replyError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	cert, err := m.ca.SignCSR(req.CSR, id, pki.RoleWorker, time.Now(), m.lifetime())
	if err != nil {
		replyError(w, http.StatusBadRequest, err.Error())
		return
	}
	reply(w, api.JoinResponse{NodeID: id, CertPEM: cert, CAPEM: m.ca.CertPEM})
}

func (m *fakeManager) lifetime() time.Duration {
	ttl := time.Hour
	m.read(func() {
		if m.certTTL > 0 {
			ttl = m.certTTL
		}
	})
	return ttl
}

// renew signs a new certificate for the node of the presented one.
func (m *fakeManager) renew(w http.ResponseWriter, r *http.Request) {
	var req api.RenewRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		replyError(w, http.StatusBadRequest, err.Error())
		return
	}
	node, _, _ := pki.PeerIdentity(*r.TLS)
	cert, err := m.ca.SignCSR(req.CSR, node, pki.RoleWorker, time.Now(), m.lifetime())
	if err != nil {
		replyError(w, http.StatusBadRequest, err.Error())
		return
	}
	m.read(func() { m.renewals++ })
	reply(w, api.RenewResponse{CertPEM: cert, CAPEM: m.ca.CertPEM})
}

func mustParseToken(s string) pki.Token {
	tok, err := pki.ParseToken(s)
	if err != nil {
		panic(err)
	}
	return tok
}

func csrCommonName(csrPEM []byte) (string, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil {
		return "", errors.New("the CSR is not PEM encoded")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return "", err
	}
	return csr.Subject.CommonName, nil
}

// worker admits only a worker certificate of this cluster whose node ID is
// the one in the path (or, to register, in the body's node).
func (m *fakeManager) worker(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		node, role, err := pki.PeerIdentity(*r.TLS)
		if err != nil {
			m.read(func() { m.forbidden++ })
			replyError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if id := r.PathValue("id"); role != pki.RoleWorker || (id != "" && id != node) {
			m.read(func() { m.forbidden++ })
			replyError(w, http.StatusForbidden, "node "+node+" may not act for node "+id)
			return
		}
		next(w, r)
	}
}

// update changes the state under the lock and wakes blocking queries.
func (m *fakeManager) update(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn()
	m.index++
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *fakeManager) read(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn()
}

func (m *fakeManager) register(w http.ResponseWriter, r *http.Request) {
	var req api.RegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if node, _, _ := pki.PeerIdentity(*r.TLS); node != req.Node.ID {
		m.read(func() { m.forbidden++ })
		replyError(w, http.StatusForbidden, "node "+node+" may not register node "+req.Node.ID)
		return
	}
	refuse := false
	m.read(func() {
		refuse = m.refuseJoin
		if refuse {
			m.refused++
		}
	})
	if refuse {
		http.Error(w, `{"error":"no leader"}`, http.StatusServiceUnavailable)
		return
	}
	m.update(func() {
		m.registrations++
		m.nodes[req.Node.ID] = req.Node
	})
	var managers []string
	m.read(func() { managers = m.managers })
	reply(w, api.RegisterResponse{NodeID: req.Node.ID, HeartbeatTTL: m.ttl, Managers: managers})
}

func (m *fakeManager) known(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.nodes[id]
	return ok
}

func (m *fakeManager) heartbeat(w http.ResponseWriter, r *http.Request) {
	if !m.known(r.PathValue("id")) {
		http.Error(w, `{"error":"no such node"}`, http.StatusNotFound)
		return
	}
	var ttl time.Duration
	m.read(func() { m.heartbeats++; ttl = m.beatTTL })
	reply(w, api.HeartbeatResponse{HeartbeatTTL: ttl})
}

func (m *fakeManager) nodeTasks(w http.ResponseWriter, r *http.Request) {
	index, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		m.mu.Lock()
		if m.index > index || wait == 0 {
			nt := m.snapshotLocked()
			w.Header().Set(api.HeaderIndex, strconv.FormatUint(m.index, 10))
			m.mu.Unlock()
			reply(w, nt)
			return
		}
		changed := m.changed
		m.mu.Unlock()
		select {
		case <-changed:
		case <-timeout.C:
			wait = 0
		case <-r.Context().Done():
			return
		}
	}
}

// snapshotLocked is the NodeTasks answer, with copies the agent may keep.
func (m *fakeManager) snapshotLocked() *api.NodeTasks {
	b, _ := json.Marshal(api.NodeTasks{Services: m.services, Apps: m.apps})
	var nt api.NodeTasks
	_ = json.Unmarshal(b, &nt)
	for _, id := range m.order {
		t := *m.tasks[id]
		nt.Tasks = append(nt.Tasks, &t)
	}
	return &nt
}

func (m *fakeManager) status(w http.ResponseWriter, r *http.Request) {
	var rep api.StatusReport
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fail := false
	m.read(func() {
		fail = m.failReports > 0
		if fail {
			m.failReports--
		}
	})
	if fail {
		http.Error(w, `{"error":"injected failure"}`, http.StatusInternalServerError)
		return
	}
	m.update(func() {
		m.reports = append(m.reports, rep.Tasks)
		for _, ts := range rep.Tasks {
			m.applyLocked(ts)
		}
	})
	w.WriteHeader(http.StatusOK)
}

// applyLocked records an observed state as a manager does: never backwards,
// never past a terminal state.
func (m *fakeManager) applyLocked(ts types.TaskStatus) {
	t := m.tasks[ts.TaskID]
	if t == nil || t.State.Terminal() || ts.State.Rank() < t.State.Rank() {
		return
	}
	t.State, t.Health, t.ExitCode, t.Error, t.Progress = ts.State, ts.Health, ts.ExitCode, ts.Error, ts.Progress
	if ts.ContainerID != "" {
		t.ContainerID = ts.ContainerID
	}
	t.StartedAt, t.FinishedAt = ts.StartedAt, ts.FinishedAt
}

func (m *fakeManager) teardown(w http.ResponseWriter, r *http.Request) {
	var td api.TeardownDone
	if err := json.NewDecoder(r.Body).Decode(&td); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m.update(func() { m.teardowns = append(m.teardowns, td.App) })
	w.WriteHeader(http.StatusOK)
}

func replyError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: msg})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Helpers for tests.

// addService adds (or replaces) a service spec and its app's resources.
func (m *fakeManager) addService(app string, svc *types.Service) {
	m.update(func() {
		m.services[types.ServiceID(app, svc.Name)] = svc
		if m.apps[app] == nil {
			m.apps[app] = &api.AppResources{}
		}
	})
}

// addTasks places n tasks of a service on node, named "<prefix>-<i>".
func (m *fakeManager) addTasks(node, app string, svc *types.Service, prefix string, n int) []string {
	var ids []string
	m.update(func() {
		for i := 1; i <= n; i++ {
			id := prefix + "-" + strconv.Itoa(i)
			ids = append(ids, id)
			m.order = append(m.order, id)
			m.tasks[id] = &types.Task{
				ID: id, App: app, Service: svc.Name, Slot: i, ServiceVersion: svc.Version, NodeID: node,
				DesiredState: types.DesiredRunning, State: types.TaskAssigned,
			}
		}
	})
	return ids
}

func (m *fakeManager) setDesired(state types.TaskState, ids ...string) {
	m.update(func() {
		for _, id := range ids {
			m.tasks[id].DesiredState = state
		}
	})
}

func (m *fakeManager) dropTask(id string) {
	m.update(func() {
		delete(m.tasks, id)
		for i, o := range m.order {
			if o == id {
				m.order = append(m.order[:i], m.order[i+1:]...)
				break
			}
		}
	})
}

func (m *fakeManager) task(id string) types.Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.tasks[id]
}

// inState reports whether every task given is in state.
func (m *fakeManager) inState(state types.TaskState, ids ...string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if m.tasks[id].State != state {
			return false
		}
	}
	return true
}

func (m *fakeManager) reportCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.reports)
}

func (m *fakeManager) joinCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joins
}
