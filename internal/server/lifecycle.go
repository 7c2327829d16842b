package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// The per-service verbs (api/lifecycle.go). stop, start, restart and rm are
// Raft commands on the app (state/apply_lifecycle.go), acted on by the
// controller and the agents; kill, pause, unpause and top are proxied to
// the agent of the task's node, as logs are (agent/control.go says why
// they are not desired state).

// maxLifecycleServices bounds the services one request names.
const maxLifecycleServices = 1000

// lifecycleRequest decodes and checks a LifecycleRequest for the app of the
// path: every service named must be the app's, once.
func (s *Server) lifecycleRequest(w http.ResponseWriter, r *http.Request) (*types.App, api.LifecycleRequest, error) {
	var req api.LifecycleRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return nil, req, err
	}
	name := r.PathValue("name")
	app := s.store.View().App(name)
	if app == nil {
		return nil, req, notFound("app %q not found", name)
	}
	if app.Deleting {
		return nil, req, &apiError{status: http.StatusConflict, msg: "app " + name + " is being removed"}
	}
	if len(req.Services) > maxLifecycleServices {
		return nil, req, badRequest("services", "at most %d services, not %d", maxLifecycleServices, len(req.Services))
	}
	seen := map[string]bool{}
	for i, svc := range req.Services {
		field := fmt.Sprintf("services[%d]", i)
		switch {
		case app.Service(svc) == nil:
			return nil, req, badRequest(field, "app %s has no service %q", name, svc)
		case seen[svc]:
			return nil, req, badRequest(field, "service %s is named twice", svc)
		}
		seen[svc] = true
	}
	if t := req.TimeoutSeconds; t != nil && (*t < 0 || *t > api.MaxTimeoutSeconds) {
		return nil, req, badRequest("timeout_seconds", "must be from 0 to %d seconds, not %d", api.MaxTimeoutSeconds, *t)
	}
	return app, req, nil
}

// grace is -t as a duration: 0 (the service's own) when not given. -t 0
// stops at once, as Compose's: a grace of a nanosecond, since 0 means
// "not given" in the stored Lifecycle.
func grace(req api.LifecycleRequest) time.Duration {
	switch {
	case req.TimeoutSeconds == nil:
		return 0
	case *req.TimeoutSeconds == 0:
		return time.Nanosecond
	}
	return time.Duration(*req.TimeoutSeconds) * time.Second
}

// named is the request's services, or every service of the app.
func named(app *types.App, req api.LifecycleRequest) []string {
	if len(req.Services) > 0 {
		return req.Services
	}
	out := make([]string, 0, len(app.Services))
	for _, svc := range app.Services {
		out = append(out, svc.Name)
	}
	return out
}

func (s *Server) stopServices(w http.ResponseWriter, r *http.Request) error {
	return s.lifecycle(w, r, func(app *types.App, req api.LifecycleRequest) state.Command {
		return &state.StopServices{App: app.Name, Services: req.Services, Grace: grace(req), Now: s.clock.Now()}
	})
}

func (s *Server) startServices(w http.ResponseWriter, r *http.Request) error {
	return s.lifecycle(w, r, func(app *types.App, req api.LifecycleRequest) state.Command {
		if req.TimeoutSeconds != nil {
			return nil
		}
		return &state.StartServices{App: app.Name, Services: req.Services, Now: s.clock.Now()}
	})
}

func (s *Server) restartServices(w http.ResponseWriter, r *http.Request) error {
	return s.lifecycle(w, r, func(app *types.App, req api.LifecycleRequest) state.Command {
		return &state.RestartServices{App: app.Name, Services: req.Services, Grace: grace(req), Now: s.clock.Now()}
	})
}

// lifecycle commits the command cmd makes of a checked request (nil: a
// timeout where none applies) and answers with the services it named.
func (s *Server) lifecycle(w http.ResponseWriter, r *http.Request, cmd func(*types.App, api.LifecycleRequest) state.Command) error {
	app, req, err := s.lifecycleRequest(w, r)
	if err != nil {
		return err
	}
	c := cmd(app, req)
	if c == nil {
		return badRequest("timeout_seconds", "start takes no timeout")
	}
	if _, err := s.Commit(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.LifecycleResponse{Services: named(app, req)})
	return nil
}

// removeStopped is berth rm: the stopped tasks' records go, and their
// agents remove the containers.
func (s *Server) removeStopped(w http.ResponseWriter, r *http.Request) error {
	app, req, err := s.lifecycleRequest(w, r)
	if err != nil {
		return err
	}
	if req.TimeoutSeconds != nil {
		return badRequest("timeout_seconds", "rm takes no timeout; berth stop -t does")
	}
	res, err := s.Commit(r.Context(), &state.RemoveStoppedTasks{App: app.Name, Services: req.Services, Now: s.clock.Now()})
	if err != nil {
		return err
	}
	removed, _ := res.([]*types.Task)
	out := api.RemoveResponse{Removed: []string{}}
	for _, t := range removed {
		out.Removed = append(out.Removed, t.Name())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) killTask(w http.ResponseWriter, r *http.Request) error {
	var req api.KillRequest
	if err := decodeJSON(w, r, api.MaxRequestBytes, &req); err != nil {
		return err
	}
	if err := checkSignal(req.Signal); err != nil {
		return err
	}
	q := url.Values{}
	if req.Signal != "" {
		q.Set("signal", req.Signal)
	}
	return s.taskAction(w, r, http.MethodPost, api.PathAgentTaskKill, q, "kill")
}

func (s *Server) pauseTask(w http.ResponseWriter, r *http.Request) error {
	return s.taskAction(w, r, http.MethodPost, api.PathAgentTaskPause, nil, "pause")
}

func (s *Server) unpauseTask(w http.ResponseWriter, r *http.Request) error {
	return s.taskAction(w, r, http.MethodPost, api.PathAgentTaskUnpause, nil, "unpause")
}

func (s *Server) taskTop(w http.ResponseWriter, r *http.Request) error {
	return s.taskAction(w, r, http.MethodGet, api.PathAgentTaskTop, nil, "list the processes of")
}

// checkSignal accepts what docker kill does: a signal's name, with or
// without SIG, or its number.
func checkSignal(sig string) error {
	if sig == "" {
		return nil
	}
	if n, err := strconv.Atoi(sig); err == nil {
		if n < 1 || n > 64 {
			return badRequest("signal", "a signal number is from 1 to 64, not %d", n)
		}
		return nil
	}
	name := strings.ToUpper(sig)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if len(sig) > 16 || unix.SignalNum(name) == 0 {
		return badRequest("signal", "%q is not a signal; give a name such as SIGTERM or HUP, or a number", sig)
	}
	return nil
}

// taskAction sends one action to the agent of a running task's node and
// relays its answer: the JSON it gives (top), or 204.
func (s *Server) taskAction(w http.ResponseWriter, r *http.Request, method, route string, q url.Values, what string) error {
	view := s.store.View()
	id := r.PathValue("id")
	t := view.Task(id)
	if t == nil {
		return notFound("task %q not found", id)
	}
	if t.State != types.TaskRunning {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("task %s is %s, not running; there is nothing to %s", t.Name(), t.State, what)}
	}
	n := view.Node(t.NodeID)
	if n == nil {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("task %s has no node", t.Name())}
	}
	ctx, cancel := context.WithTimeout(r.Context(), agentAnswerTimeout+agentControlTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "https://"+n.Address+api.AgentTaskPath(route, id, q), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: s.agentTransport}).Do(req)
	if err != nil {
		return &apiError{status: http.StatusBadGateway, msg: fmt.Sprintf("node %s (%s) does not answer to %s %s: %v", n.Name, n.Address, what, t.Name(), err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, api.MaxRequestBytes))
	if err != nil {
		return &apiError{status: http.StatusBadGateway, msg: fmt.Sprintf("node %s cut its answer to %s %s: %v", n.Name, what, t.Name(), err)}
	}
	if resp.StatusCode >= 300 {
		var e api.ErrorBody
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return &apiError{status: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s", what, t.Name(), e.Error)}
	}
	if resp.StatusCode == http.StatusNoContent || len(body) == 0 {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
	return nil
}

// agentControlTimeout is how long an agent may take over one action (the
// agent's own bound, agent/control.go).
const agentControlTimeout = 30 * time.Second
