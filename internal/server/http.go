package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/raftnode"
	"github.com/berth-dev/berth/internal/state"
)

// maxWait caps a blocking query's wait; defaultWait applies when a client
// gives an index but no wait.
const (
	maxWait     = 5 * time.Minute
	defaultWait = 60 * time.Second
)

// handlerFunc is an API handler: it writes its answer, or returns an error
// that becomes a JSON error answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// routes builds one listener's handler. The user API and the cluster port
// serve the same user routes, guarded differently: by a user credential on
// the API (on loopback too), by a manager certificate on the cluster port
// (requests other managers forward). Agent routes and join live on the
// cluster port only. Writes on a follower go to the leader.
func (s *Server) routes(clusterPort bool) http.Handler {
	mux := http.NewServeMux()
	guard := s.requireUser
	if clusterPort {
		guard = s.requireManager
	}
	read := func(pattern string, fn handlerFunc) { mux.Handle(pattern, s.instrument(pattern, guard(s.reads(fn)))) }
	write := func(pattern string, fn handlerFunc) {
		mux.Handle(pattern, s.instrument(pattern, guard(s.onLeader(fn))))
	}
	read("GET "+api.PathStatus, s.getStatus)
	read("GET "+api.PathApps, s.listApps)
	write("PUT "+api.PathApp, s.putApp)
	read("GET "+api.PathApp, s.getApp)
	write("DELETE "+api.PathApp, s.deleteApp)
	write("POST "+api.PathScale, s.scale)
	read("GET "+api.PathVolumePins, s.volumePins)
	write("DELETE "+api.PathServicePins, s.unpin)
	read("GET "+api.PathNetworks, s.listNetworks)
	write("POST "+api.PathNetworks, s.createNetwork)
	read("GET "+api.PathNetwork, s.getNetwork)
	write("DELETE "+api.PathNetwork, s.deleteNetwork)
	read("GET "+api.PathVolumes, s.listVolumes)
	read("GET "+api.PathVolume, s.getVolume)
	write("DELETE "+api.PathVolume, s.removeVolume)
	read("GET "+api.PathMachines, s.listMachines)
	read("GET "+api.PathMachine, s.getMachine)
	write("PUT "+api.PathMachine, s.putMachine)
	write("DELETE "+api.PathMachine, s.deleteMachine)
	read("GET "+api.PathTasks, s.listTasks)
	read("GET "+api.PathTask, s.getTask)
	read("GET "+api.PathDeployments, s.listDeployments)
	write("POST "+api.PathServiceRollback, s.rollbackService)
	write("POST "+api.PathServicePromote, s.promoteService)
	read("POST "+api.PathAppPlan, s.planApp)
	read("GET "+api.PathEvents, s.events)
	read("GET "+api.PathTaskLogs, s.taskLogs)
	read("POST "+api.PathTaskExec, s.taskExec)
	read("GET "+api.PathTaskArchive, s.taskArchive)
	read("PUT "+api.PathTaskArchive, s.taskArchive)
	write("POST "+api.PathAppStop, s.stopServices) // lifecycle.go
	write("POST "+api.PathAppStart, s.startServices)
	write("POST "+api.PathAppRestart, s.restartServices)
	write("POST "+api.PathAppRm, s.removeStopped)
	write("POST "+api.PathAppRuns, s.runOneOff) // run.go
	write("DELETE "+api.PathAppRun, s.removeRun)
	read("POST "+api.PathTaskAttach, s.taskAttach)
	read("POST "+api.PathTaskKill, s.killTask)
	read("POST "+api.PathTaskPause, s.pauseTask)
	read("POST "+api.PathTaskUnpause, s.unpauseTask)
	read("GET "+api.PathTaskTop, s.taskTop)
	read("GET "+api.PathNodes, s.listNodes)
	read("GET "+api.PathNode, s.getNode)
	write("DELETE "+api.PathNode, s.removeNode)
	write("POST "+api.PathNodeAvailability, s.setAvailability)
	write("POST "+api.PathNodeLabels, s.updateLabels)
	read("GET "+api.PathMembers, s.members)
	write("DELETE "+api.PathMember, s.removeMember)
	read("GET "+api.PathTokens, s.tokens)
	write("POST "+api.PathTokenRotate, s.rotateToken)
	read("GET "+api.PathSnapshot, s.saveSnapshot)
	read("GET "+api.PathSnapshotImages, s.snapshotImages)
	write("POST "+api.PathSnapshot, s.restoreSnapshot)
	mux.Handle("GET "+api.PathMetrics, s.metricsHandler(guard))
	mux.Handle(api.PathRegistry, s.registryHandler(clusterPort))
	read("GET "+api.PathImages, s.listImages)
	if !clusterPort { // there, agents ask for it with their node certificate (below)
		read("GET "+api.PathNetworkMap, s.netMap)
	}
	read("GET "+api.PathImage, s.getImage)
	// Not a write on the leader: the manager that took the push reads its
	// own registry, then commits through the leader (images.go).
	mux.Handle("PUT "+api.PathImages, s.instrument(api.PathImages, guard(s.putImage)))
	if clusterPort {
		node := func(pattern string, fn handlerFunc) { mux.Handle(pattern, s.instrument(pattern, s.requireNode(fn))) }
		node("POST "+api.PathNodeRegister, s.onLeader(s.registerNode))
		node("POST "+api.PathHeartbeat, s.onLeader(s.heartbeat))
		node("GET "+api.PathNodeTasks, s.reads(s.nodeTasks))
		node("GET "+api.PathNetworkMap, s.reads(s.netMap))
		node("POST "+api.PathNodeStatus, s.onLeader(s.nodeStatus))
		node("POST "+api.PathTeardown, s.onLeader(s.teardownDone))
		node("POST "+api.PathVolumeRemoved, s.onLeader(s.volumeRemoved))
		node("POST "+api.PathNodeRenew, s.renewNode)
		mux.Handle("POST "+api.PathJoin, s.instrument(api.PathJoin, s.onLeader(s.join)))
		mux.Handle("PUT "+pathImageRecords, s.instrument(pathImageRecords, s.requireManager(s.onLeader(commitRoute[state.UpsertImage](s)))))
		mux.Handle("POST "+pathImageReplicas, s.instrument(pathImageReplicas, s.requireManager(s.onLeader(commitRoute[state.ImageReplica](s)))))
		mux.Handle("POST "+api.PathMembers, s.instrument(api.PathMembers, s.requireManager(s.onLeader(s.addMember))))
	}
	mux.Handle("/", s.instrument("other", func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no such endpoint: %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// reads marks answers with how stale they may be.
func (s *Server) reads(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		s.staleness(w)
		if err := s.unhealthyRead(w, r); err != nil {
			return err
		}
		return next(w, r)
	}
}

// instrument wraps a handler with a default body limit, panic recovery,
// error rendering and latency metrics.
func (s *Server) instrument(route string, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					// A stream that failed midway (snapshot.go): the
					// client must see a cut answer, not a whole one.
					panic(p)
				}
				s.log.Error("panic in API handler", "route", route, "panic", p)
				writeError(sw, &apiError{status: http.StatusInternalServerError, msg: "internal error; see the manager's log"})
			}
			s.metrics.apiSeconds.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
		}()
		if r.ContentLength > api.MaxAppBytes {
			writeError(sw, tooLarge(api.MaxAppBytes))
			return
		}
		if err := fn(sw, r); err != nil {
			writeError(sw, s.toAPIError(err))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the connection's writer, so a
// streaming handler can enable full duplex (exec) or set deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets streaming handlers (logs) flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// apiError is an error with the HTTP status and the field it is about.
type apiError struct {
	status int
	msg    string
	field  string
	// notApplied: the request was certainly not done (api.HeaderNotApplied).
	notApplied bool
}

func (e *apiError) Error() string { return e.msg }

func badRequest(field, format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return &apiError{status: http.StatusBadRequest, msg: msg, field: field}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

func tooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body is larger than the limit of %d bytes", limit)}
}

// toAPIError maps errors from the layers below to HTTP answers.
func (s *Server) toAPIError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, state.ErrNotFound):
		return &apiError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, state.ErrConflict):
		return &apiError{status: http.StatusConflict, msg: err.Error()}
	case errors.Is(err, state.ErrInvalid):
		return &apiError{status: http.StatusBadRequest, msg: err.Error()}
	case errors.Is(err, raftnode.ErrNotLeader):
		return &apiError{status: http.StatusServiceUnavailable, msg: "this manager is not the leader and cannot accept writes now; retry shortly"}
	default:
		s.log.Error("API request failed", "err", err)
		return &apiError{status: http.StatusInternalServerError, msg: err.Error()}
	}
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.notApplied {
		w.Header().Set(api.HeaderNotApplied, "true")
	}
	writeJSON(w, e.status, api.ErrorBody{Error: e.msg, Field: e.field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONList writes items as writeJSON would, one element at a time
// through a small buffer: encoding/json builds a whole value in memory
// before it writes, and a list of 100,000 tasks held 64 MB of the
// leader's heap (and twice that as the buffer grew) for the length of
// the answer.
func writeJSONList[T any](w http.ResponseWriter, status int, items []T) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if items == nil {
		_, _ = io.WriteString(w, "null\n")
		return
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	_ = bw.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		b, err := json.Marshal(it)
		if err != nil {
			return // as writeJSON: the status is out; the client sees a cut answer
		}
		_, _ = bw.Write(b)
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}

// decodeJSON reads a JSON body of at most limit bytes into v, refusing
// unknown fields, and explains what is wrong in terms of the body's fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return badRequest("", "request body: more than one JSON value")
		}
		return nil
	}
	var (
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		maxB *http.MaxBytesError
	)
	switch {
	case errors.As(err, &maxB):
		return tooLarge(limit)
	case errors.Is(err, io.EOF):
		return badRequest("", "request body: empty; a JSON object is required")
	case errors.As(err, &syn):
		return badRequest("", "request body: invalid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return badRequest(typ.Field, "must be a JSON %s, not %s", typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest(field, "unknown field")
	default:
		return badRequest("", "request body: %v", err)
	}
}

// queryOptions parses ?index= and ?wait= of a blocking query.
func queryOptions(r *http.Request) (index uint64, wait time.Duration, err error) {
	q := r.URL.Query()
	if v := q.Get("index"); v != "" {
		index, err = strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, badRequest("index", "must be a non-negative integer, not %q", v)
		}
	}
	wait = defaultWait
	if v := q.Get("wait"); v != "" {
		wait, err = time.ParseDuration(v)
		if err != nil || wait < 0 {
			return 0, 0, badRequest("wait", "must be a duration such as 30s, not %q", v)
		}
	}
	return index, min(wait, maxWait), nil
}

// block waits, for a blocking query, until the tables move past the
// client's index or the wait ends; it returns the index to answer with.
//
// That index is never 0, though tables never written (no app yet) have
// index 0: index 0 asks for an answer at once, so a client that asks again
// with the index it was given would never wait. 1 is safe to give: Raft's
// first entry is the cluster's configuration, never a table write.
func (s *Server) block(r *http.Request, tables ...string) (uint64, error) {
	index, wait, err := queryOptions(r)
	if err != nil {
		return 0, err
	}
	if index == 0 {
		return max(s.store.View().Index(tables...), 1), nil
	}
	ctx, cancel := contextWithTimeout(r, wait)
	defer cancel()
	idx, _ := s.store.WaitForChange(ctx, tables, index)
	return max(idx, 1), nil
}

func setIndex(w http.ResponseWriter, idx uint64) {
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(idx, 10))
}
