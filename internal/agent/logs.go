package agent

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
)

// routes is the agent API: only what the manager proxies to it.
func (a *Agent) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathAgentTaskLogs, a.handleLogs)
	mux.HandleFunc("POST "+api.PathAgentTaskExec, a.handleExec)
	mux.HandleFunc("POST "+api.PathAgentTaskAttach, a.handleAttach) // attach.go
	mux.HandleFunc("GET "+api.PathAgentTaskArchive, a.handleArchive)
	mux.HandleFunc("PUT "+api.PathAgentTaskArchive, a.handleArchive)
	a.controlRoutes(mux) // control.go
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
	d, ok := a.taskDriver(w, r, id)
	if !ok {
		return
	}
	if tl, ok := d.(driver.TimedLogs); (!opts.Since.IsZero() || !opts.Until.IsZero()) && (!ok || !tl.TimedLogs()) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("task %s runs on the %s driver, which keeps no time for its log lines; drop --since and --until", id, d.Name()))
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

// taskDriver is driverOf for a handler: a task not here is answered 404,
// a driver that fails 502, and ok is false.
func (a *Agent) taskDriver(w http.ResponseWriter, r *http.Request, id string) (driver.Driver, bool) {
	d, err := a.driverOf(r, id)
	if errors.Is(err, driver.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("task %s is not on node %s", id, a.cfg.Name))
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return nil, false
	}
	return d, true
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
	for _, b := range []struct {
		name string
		at   *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := q.Get(b.name); v != "" {
			if *b.at, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return o, fmt.Errorf("%s must be an RFC 3339 time, not %q", b.name, v)
			}
		}
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		return o, fmt.Errorf("until (%s) is before since (%s); no line can be in between", o.Until.Format(time.RFC3339), o.Since.Format(time.RFC3339))
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
