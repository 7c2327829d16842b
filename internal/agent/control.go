package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// The one-shot actions on a running task (berth kill, pause, unpause, top),
// asked by the manager over the cluster port's mutual TLS, as task logs
// are. They are not desired state, on purpose: a kill is an event at one
// moment, and a kill kept in Raft would be sent again to whatever runs in
// the slot after a failover or an agent restart. Sent once, it either
// reaches the task now or fails now, and the user is told which. What it
// causes (an exit) is reported as any exit, and the restart policy
// applies. A pause lives in the task itself (the engine keeps a container
// paused across agent restarts; a SIGSTOPped process stays stopped), and a
// task lost with its node is replaced running, as Compose would recreate
// it.

func (a *Agent) controlRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+api.PathAgentTaskKill, a.handleControl(func(ctx context.Context, c driver.Control, id string, r *http.Request) (any, error) {
		return nil, c.Kill(ctx, id, r.URL.Query().Get("signal"))
	}))
	mux.HandleFunc("POST "+api.PathAgentTaskPause, a.handleControl(func(ctx context.Context, c driver.Control, id string, _ *http.Request) (any, error) {
		return nil, c.Pause(ctx, id)
	}))
	mux.HandleFunc("POST "+api.PathAgentTaskUnpause, a.handleControl(func(ctx context.Context, c driver.Control, id string, _ *http.Request) (any, error) {
		return nil, c.Unpause(ctx, id)
	}))
	mux.HandleFunc("GET "+api.PathAgentTaskTop, a.handleControl(func(ctx context.Context, c driver.Control, id string, _ *http.Request) (any, error) {
		p, err := c.Top(ctx, id)
		if err != nil {
			return nil, err
		}
		return &api.Processes{Titles: p.Titles, Processes: p.Rows}, nil
	}))
}

// controlTimeout bounds one action on the driver.
const controlTimeout = 30 * time.Second

type controlFunc func(ctx context.Context, c driver.Control, id string, r *http.Request) (any, error)

// handleControl finds the task's driver and calls fn, answering 404 for a
// task not on this node, 409 for one not running, 501 for a driver that
// has no such action, and fn's result as JSON (204 when nil).
func (a *Agent) handleControl(fn controlFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		d, ok := a.taskDriver(w, r, id) // logs.go
		if !ok {
			return
		}
		c, ok := d.(driver.Control)
		if !ok {
			writeError(w, http.StatusNotImplemented, fmt.Sprintf("the %s driver of node %s cannot do this to a task", d.Name(), a.cfg.Name))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), controlTimeout)
		defer cancel()
		out, err := fn(ctx, c, id, r)
		switch {
		case errors.Is(err, driver.ErrNotRunning):
			writeError(w, http.StatusConflict, fmt.Sprintf("task %s is not running on node %s", id, a.cfg.Name))
		case errors.Is(err, driver.ErrNotFound):
			writeError(w, http.StatusNotFound, fmt.Sprintf("task %s is not on node %s", id, a.cfg.Name))
		case err != nil:
			a.log.Warn("task action failed", "task", id, "path", r.URL.Path, "err", err)
			writeError(w, http.StatusBadGateway, fmt.Sprintf("node %s: %v", a.cfg.Name, err))
		case out == nil:
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = jsonEncode(w, out)
		}
	}
}

// stopGrace is the grace task r is stopped with: the -t of the berth stop
// or restart that ends it (in its service's spec, still sent while the
// version is current), else the -t of the up or down that stops it (on the
// task), else the grace remembered when it started.
func (l *loop) stopGrace(r *taskRecord) time.Duration {
	if l.desired == nil {
		return r.local.Grace
	}
	for _, t := range l.desired.Tasks {
		if t.ID != r.id {
			continue
		}
		var lc *types.Lifecycle
		if svc := l.desired.Services[types.ServiceID(r.local.App, r.local.Service)]; svc != nil {
			lc = svc.Lifecycle
		}
		return cmp.Or(lc.GraceOf(t), t.StopGrace, r.local.Grace)
	}
	return r.local.Grace
}
