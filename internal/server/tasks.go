package server

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/state"
)

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	// Apps too: the controller's verdicts on services (types.Service.Status)
	// are judged from tasks, and a client following a deploy must wake
	// when one is recorded.
	idx, err := s.block(r, state.TableTasks, state.TableApps)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	tasks := s.store.View().Tasks(state.TaskFilter{App: q.Get("app"), Service: q.Get("service"), NodeID: q.Get("node")})
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, tasks)
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
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: s.agentTransport}).Do(req)
	if err != nil {
		return &apiError{status: http.StatusBadGateway, msg: fmt.Sprintf("node %s (%s) does not answer for the logs of %s: %v", n.Name, n.Address, t.Name(), err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &apiError{status: resp.StatusCode, msg: fmt.Sprintf("node %s: %s", n.Name, strings.TrimSpace(string(b)))}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	copyFlushing(w, resp.Body)
	return nil
}

// copyFlushing copies a stream and flushes after every read, so `logs -f`
// lines arrive as they are written.
func copyFlushing(w http.ResponseWriter, r io.Reader) {
	f, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
