package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
)

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	// Apps too: the controller's verdicts on services (types.Service.Status)
	// are judged from tasks, and a client following a deploy must wake
	// when one is recorded, or a deployment moves.
	idx, err := s.block(r, state.TableTasks, state.TableApps, state.TableDeployments)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	tasks := s.store.View().Tasks(state.TaskFilter{App: q.Get("app"), Service: q.Get("service"), NodeID: q.Get("node")})
	setIndex(w, idx)
	writeJSONList(w, http.StatusOK, tasks)
	return nil
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	t := s.store.View().Task(r.PathValue("id"))
	if t == nil {
		return notFound("task %q not found", r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// taskLogs proxies a task's log stream from the agent of its node: logs stay
// on the node that made them.
func (s *Server) taskLogs(w http.ResponseWriter, r *http.Request) error {
	view := s.store.View()
	id := r.PathValue("id")
	t := view.Task(id)
	if t == nil {
		return notFound("task %q not found", id)
	}
	n := view.Node(t.NodeID)
	if n == nil {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("task %s has not been placed on a node; it has no logs yet", t.Name())}
	}
	u := "https://" + n.Address + strings.Replace(api.PathAgentTaskLogs, "{id}", url.PathEscape(id), 1)
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	// The node gets the time an answer takes to start; a stream then
	// lives as long as heartbeats keep coming (api.ReadStream).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	start := time.AfterFunc(agentAnswerTimeout, cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set(api.HeaderHeartbeat, "1")
	resp, err := (&http.Client{Transport: s.agentTransport}).Do(req)
	start.Stop()
	if err != nil {
		return &apiError{status: http.StatusBadGateway, msg: fmt.Sprintf("node %s (%s) does not answer for the logs of %s: %v", n.Name, n.Address, t.Name(), err)}
	}
	body := api.ReadStream(resp, cancel)
	defer body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(body, 4096))
		return &apiError{status: resp.StatusCode, msg: fmt.Sprintf("node %s: %s", n.Name, strings.TrimSpace(string(b)))}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	out, stop := api.WriteStream(w, r, api.HeartbeatEvery)
	defer stop()
	if _, err := io.Copy(out, body); err != nil && r.Context().Err() == nil {
		s.log.Warn("task log stream cut", "task", id, "node", n.Name, "err", err)
	}
	return nil
}

// agentAnswerTimeout bounds how long a node may take to start answering a
// request the manager proxies to it.
const agentAnswerTimeout = 10 * time.Second
