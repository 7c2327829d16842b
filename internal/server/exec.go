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
)

// taskExec forwards berth exec to the agent of the task's node, as
// taskLogs does, over the cluster port with this manager's certificate:
// the request body (stdin, resizes) goes on as it comes, the answer
// (output, exit code) comes back flushed frame by frame.
func (s *Server) taskExec(w http.ResponseWriter, r *http.Request) error {
	if _, err := api.ParseExecOptions(r.URL.Query()); err != nil {
		return badRequest("", "%s", err.Error())
	}
	view := s.store.View()
	id := r.PathValue("id")
	t := view.Task(id)
	if t == nil {
		return notFound("task %q not found", id)
	}
	n := view.Node(t.NodeID)
	if n == nil {
		return &apiError{status: http.StatusConflict, msg: fmt.Sprintf("task %s has not been placed on a node; wait for it to run", t.Name())}
	}
	u := "https://" + n.Address + strings.Replace(api.PathAgentTaskExec, "{id}", url.PathEscape(id), 1) + "?" + r.URL.RawQuery
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	start := time.AfterFunc(agentAnswerTimeout, cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, io.NopCloser(r.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := (&http.Client{Transport: s.agentTransport}).Do(req)
	start.Stop()
	if err != nil {
		return &apiError{status: http.StatusBadGateway, msg: fmt.Sprintf("node %s (%s) does not answer for an exec in %s: %v", n.Name, n.Address, t.Name(), err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &apiError{status: resp.StatusCode, msg: fmt.Sprintf("node %s: %s", n.Name, strings.TrimSpace(string(b)))}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return nil
			}
			_ = rc.Flush()
		}
		if err != nil {
			if err != io.EOF && r.Context().Err() == nil {
				s.log.Warn("task exec stream cut", "task", id, "node", n.Name, "err", err)
			}
			return nil
		}
	}
}
