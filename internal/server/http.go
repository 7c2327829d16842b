package server

import (
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

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn handlerFunc) { mux.Handle(pattern, s.instrument(pattern, fn)) }
	h("GET "+api.PathStatus, s.getStatus)
	h("GET "+api.PathApps, s.listApps)
	h("PUT "+api.PathApp, s.putApp)
	h("GET "+api.PathApp, s.getApp)
	h("DELETE "+api.PathApp, s.deleteApp)
	h("POST "+api.PathScale, s.scale)
	h("GET "+api.PathTasks, s.listTasks)
	h("GET "+api.PathTask, s.getTask)
	h("GET "+api.PathTaskLogs, s.taskLogs)
	h("GET "+api.PathNodes, s.listNodes)
	h("GET "+api.PathNode, s.getNode)
	h("DELETE "+api.PathNode, s.removeNode)
	h("POST "+api.PathNodeAvailability, s.setAvailability)
	h("POST "+api.PathNodeLabels, s.updateLabels)
	h("POST "+api.PathNodeRegister, s.registerNode)
	h("POST "+api.PathHeartbeat, s.heartbeat)
	h("GET "+api.PathNodeTasks, s.nodeTasks)
	h("POST "+api.PathNodeStatus, s.nodeStatus)
	h("POST "+api.PathTeardown, s.teardownDone)
	mux.Handle("GET "+api.PathMetrics, s.metrics.handler())
	mux.Handle("/", s.instrument("other", func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no such endpoint: %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// instrument wraps a handler with a default body limit, panic recovery,
// error rendering and latency metrics.
func (s *Server) instrument(route string, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
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
	case errors.Is(err, raftnode.ErrNotLeader):
		return &apiError{status: http.StatusServiceUnavailable, msg: "this manager is not the leader and cannot accept writes now; retry shortly"}
	default:
		s.log.Error("API request failed", "err", err)
		return &apiError{status: http.StatusInternalServerError, msg: err.Error()}
	}
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, api.ErrorBody{Error: e.msg, Field: e.field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
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
func (s *Server) block(r *http.Request, tables ...string) (uint64, error) {
	index, wait, err := queryOptions(r)
	if err != nil {
		return 0, err
	}
	if index == 0 {
		return s.store.View().Index(tables...), nil
	}
	ctx, cancel := contextWithTimeout(r, wait)
	defer cancel()
	idx, _ := s.store.WaitForChange(ctx, tables, index)
	return idx, nil
}

func setIndex(w http.ResponseWriter, idx uint64) {
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(idx, 10))
}
