package agent

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
)

// routes is the agent API: only what the manager proxies to it.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathAgentTaskLogs, a.handleLogs)
	mux.HandleFunc("POST "+api.PathAgentTaskExec, a.handleExec)
	mux.HandleFunc("GET "+api.PathAgentTaskArchive, a.handleArchive)
	mux.HandleFunc("PUT "+api.PathAgentTaskArchive, a.handleArchive)
	return mux
}

// handleLogs streams a task's output, flushed after every write so that a
// followed log reaches the user line by line.
func (a *Agent) handleLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	opts, err := logOptions(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := a.driverOf(r, id)
	if errors.Is(err, driver.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("task %s is not on node %s", id, a.cfg.Name))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// With heartbeats (when the manager asks), a quiet `logs -f` is told
	// from a frozen node.
	out, stop := api.WriteStream(w, r, api.HeartbeatEvery)
	defer stop()
	if err := d.Logs(r.Context(), id, opts, out); err != nil && r.Context().Err() == nil {
		a.log.Warn("stream task logs", "task", id, "err", err)
	}
}

// driverOf finds the driver that holds a task.
func (a *Agent) driverOf(r *http.Request, id string) (driver.Driver, error) {
	var errs []error
	for _, name := range a.driverNames() {
		d := a.drivers[name]
		_, err := d.Inspect(r.Context(), id)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, driver.ErrNotFound) {
			errs = append(errs, fmt.Errorf("driver %s: %w", name, err))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("find task %s: %w", id, errors.Join(errs...))
	}
	return nil, driver.ErrNotFound
}

func logOptions(r *http.Request) (driver.LogOptions, error) {
	q := r.URL.Query()
	var o driver.LogOptions
	var err error
	if v := q.Get("tail"); v != "" {
		if o.Tail, err = strconv.Atoi(v); err != nil || o.Tail < 0 {
			return o, fmt.Errorf("tail must be a number of lines, not %q", v)
		}
	}
	if o.Follow, err = boolParam(q.Get("follow")); err != nil {
		return o, fmt.Errorf("follow: %w", err)
	}
	if o.Timestamps, err = boolParam(q.Get("timestamps")); err != nil {
		return o, fmt.Errorf("timestamps: %w", err)
	}
	return o, nil
}

func boolParam(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	return strconv.ParseBool(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = jsonEncode(w, api.ErrorBody{Error: msg})
}
