package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// taskExec forwards berth exec to the agent of the task's node, as
// taskLogs does, over the cluster port with this manager's certificate.
// Both ways stream: the request body (stdin, resizes) goes on as it comes,
// the answer (output, exit code) comes back flushed as it comes. Over
// HTTP/1.1 that needs full duplex on this side; the agent enables it on
// its own.
func (s *Server) taskExec(w http.ResponseWriter, r *http.Request) error {
	if _, err := api.ParseExecOptions(r.URL.Query()); err != nil {
		return &apiError{status: http.StatusBadRequest, msg: err.Error()}
	}
	return s.duplexToAgent(w, r, api.PathAgentTaskExec, "an exec")
}

// duplexToAgent relays an exec-framed stream (an exec, berth run's attach)
// both ways between the client and the agent's agentPath.
func (s *Server) duplexToAgent(w http.ResponseWriter, r *http.Request, agentPath, what string) error {
	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		return fmt.Errorf("this manager cannot stream %s both ways: %w", what, err)
	}
	resp, done, err := s.toAgent(r, http.MethodPost, agentPath, io.NopCloser(r.Body), what, agentAnswerTimeout)
	if err != nil {
		return err
	}
	defer done()
	w.Header().Set("Content-Type", "application/octet-stream")
	s.relay(w, rc, resp.Body, r, strings.TrimPrefix(strings.TrimPrefix(what, "an "), "a "))
	return nil
}

// taskArchive forwards berth cp: GET streams the tar of a path in the task
// back, PUT sends the tar in the body (at most api.MaxCopyBytes) there.
func (s *Server) taskArchive(w http.ResponseWriter, r *http.Request) error {
	if p := r.URL.Query().Get("path"); p == "" || p[0] != '/' {
		return badRequest("path", "%q is not an absolute path in the task", p)
	}
	var body io.ReadCloser
	if r.Method == http.MethodPut {
		body = http.MaxBytesReader(w, r.Body, api.MaxCopyBytes)
	}
	// A copy in is answered once the tar is all there and extracted.
	resp, done, err := s.toAgent(r, r.Method, api.PathAgentTaskArchive, body, "a copy", copyAnswerTimeout)
	if err != nil {
		return err
	}
	defer done()
	if r.Method == http.MethodPut {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if !s.relay(w, http.NewResponseController(w), resp.Body, r, "copy") {
		panic(http.ErrAbortHandler) // the tar was cut: the client must not see it whole
	}
	return nil
}

// copyAnswerTimeout bounds how long a copy's node may take to answer: a
// copy in is answered once its tar (up to api.MaxCopyBytes) arrived whole.
const copyAnswerTimeout = 10 * time.Minute

// toAgent sends r on to the agent of its task's node (agentPath, the same
// query) and returns its answer once that is a success; done ends it. The
// node gets answerIn to start answering.
func (s *Server) toAgent(r *http.Request, method, agentPath string, body io.ReadCloser, what string, answerIn time.Duration) (*http.Response, func(), error) {
	t, n, err := s.placedTask(r.PathValue("id"), what)
	if err != nil {
		return nil, nil, err
	}
	u := "https://" + n.Address + api.AgentTaskPath(agentPath, t.ID, r.URL.Query())
	ctx, cancel := context.WithCancel(r.Context())
	start := time.AfterFunc(answerIn, cancel)
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		req.Header.Set("Expect", api.ExpectContinue) // as the client asked: see api.ExpectContinue
	}
	resp, err := (&http.Client{Transport: s.agentTransport}).Do(req)
	start.Stop()
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		cancel()
		return nil, nil, tooLarge(tooBig.Limit)
	}
	if err != nil {
		cancel()
		return nil, nil, &apiError{status: http.StatusBadGateway, msg: fmt.Sprintf("node %s (%s) does not answer for %s in %s: %v", n.Name, n.Address, what, t.Name(), err)}
	}
	done := func() { resp.Body.Close(); cancel() }
	if resp.StatusCode >= 300 {
		defer done()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(string(b))
		var eb api.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		return nil, nil, &apiError{status: resp.StatusCode, msg: fmt.Sprintf("node %s: %s", n.Name, msg)}
	}
	return resp, done, nil
}

// placedTask is task id and the node it is placed on.
func (s *Server) placedTask(id, what string) (*types.Task, *types.Node, error) {
	view := s.store.View()
	t := view.Task(id)
	if t == nil {
		return nil, nil, notFound("task %q not found", id)
	}
	n := view.Node(t.NodeID)
	if n == nil {
		return nil, nil, &apiError{status: http.StatusConflict, msg: fmt.Sprintf("task %s has not been placed on a node, so it cannot take %s; wait for it to run (berth ps)", t.Name(), what)}
	}
	return t, n, nil
}

// relay copies an agent's streamed answer to w, flushing every read, and
// says whether it reached its end.
func (s *Server) relay(w http.ResponseWriter, rc *http.ResponseController, from io.Reader, r *http.Request, what string) bool {
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		k, err := from.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return false
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			if r.Context().Err() == nil {
				s.log.Warn("task "+what+" stream cut", "task", r.PathValue("id"), "err", err)
			}
			return false
		}
	}
}
