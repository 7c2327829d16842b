package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
)

// Headers on reads: who leads, and how long ago this manager heard from it
// ("0" on the leader), so a client knows how stale an answer may be.
const (
	HeaderLeader      = "X-Berth-Leader"
	HeaderLastContact = "X-Berth-Last-Contact"
)

// Forwarding deadlines: one attempt to the leader, and how long a write is
// retried while the leader is gone (an election on loopback takes 1-2 s).
const (
	forwardAttempt = 5 * time.Second
	forwardFor     = 15 * time.Second
)

// maxForwardIdle is how many connections to another manager are kept
// open for reuse (server.go): as many as a follower forwards at once in a
// deploy of thousands of nodes, so none pays a new TLS handshake.
const maxForwardIdle = 256

// onLeader wraps a write handler: on the leader it runs; on a follower the
// request, already authenticated here, goes to the leader's cluster port
// over mutual TLS with this manager's certificate (an agent's node ID rides
// along in HeaderForwardedNode). See forward for retries.
func (s *Server) onLeader(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.raft.IsLeader() {
			return next(w, r)
		}
		return s.forward(w, r, next)
	}
}

// forward sends r to the leader and copies its answer back. A leader that
// cannot be reached, does not answer within forwardAttempt, or answers that
// it lost office (502, 503) is replaced by the one the cluster elects next,
// until forwardFor has passed: at once when the request never reached it,
// and, when it may have, only for an idempotent request (api.Idempotent).
// One that is not gets 504, "outcome unknown", for its client to say so.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, next handlerFunc) error {
	idem := api.Idempotent(r.Method, r.URL.Path)
	var body []byte
	if idem && r.Body != nil {
		// Kept to be sent again; writes that may be repeated are small
		// (the instrument wrapper refuses bodies over api.MaxAppBytes).
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxAppBytes))
		if err != nil {
			return tooLarge(api.MaxAppBytes)
		}
		body = b
	}
	deadline := time.Now().Add(forwardFor)
	pause := 50 * time.Millisecond
	for {
		target, err := s.leaderClusterAddr(r.Context())
		if errors.Is(err, errBecameLeader) {
			if body != nil {
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			return next(w, r)
		}
		if errors.Is(err, errNoLeader) {
			// leaderClusterAddr waited for an election already; the
			// client decides whether to wait more.
			return err
		}
		var resp *http.Response
		sent := false
		if err == nil {
			resp, sent, err = s.forwardOnce(r, target, body, idem)
		}
		if err == nil && !leaderGone(resp.StatusCode) {
			defer resp.Body.Close()
			copyAnswer(w, resp)
			return nil
		}
		if resp != nil {
			err = fmt.Errorf("the leader at %s answered %s", target, resp.Status)
			resp.Body.Close()
			sent = true
		}
		if r.Context().Err() != nil {
			return r.Context().Err()
		}
		if sent && !idem {
			return &apiError{status: http.StatusGatewayTimeout, msg: "outcome unknown: the leader did not answer a forwarded write, which may or may not have been done (" + err.Error() + "); check the current state before trying again"}
		}
		if time.Now().After(deadline) {
			var ae *apiError
			if errors.As(err, &ae) {
				return ae
			}
			return &apiError{status: http.StatusBadGateway, msg: "the leader did not answer a forwarded request: " + err.Error() + "; retry shortly"}
		}
		s.log.Warn("forwarding to the leader failed; retrying", "method", r.Method, "path", r.URL.Path, "err", err)
		if !api.SleepCtx(r.Context(), pause) {
			return r.Context().Err()
		}
		pause = min(2*pause, time.Second)
	}
}

// leaderGone reports whether a leader's answer means it is no leader any
// more (or has none to forward to): the write was not its to take.
func leaderGone(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable
}

// forwardOnce sends r to the leader at target once, with body when it was
// kept (else r's own, once). sent reports whether the leader may have
// received the request whole.
func (s *Server) forwardOnce(r *http.Request, target string, body []byte, kept bool) (*http.Response, bool, error) {
	ctx, cancel := context.WithTimeout(r.Context(), forwardAttempt)
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) }}
	var rd io.Reader = r.Body
	if kept {
		rd = bytes.NewReader(body)
	}
	u := "https://" + target + r.URL.RequestURI()
	out, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), r.Method, u, rd)
	if err != nil {
		cancel()
		return nil, false, err
	}
	if kept {
		out.ContentLength = int64(len(body))
	} else {
		out.ContentLength = r.ContentLength
	}
	out.Header = r.Header.Clone()
	dropHopHeaders(out.Header)
	out.Header.Del(HeaderForwardedNode)
	if p := peerOf(r.Context()); p.role == pki.RoleWorker {
		out.Header.Set(HeaderForwardedNode, p.nodeID)
	}
	resp, err := (&http.Client{Transport: s.managerTransport}).Do(out)
	if err != nil {
		cancel()
		// A body not kept may have been read in part: only a request that
		// never left can go again.
		return nil, !api.NeverSent(err) && (sent.Load() || !kept), err
	}
	resp.Body = api.CancelOnClose(resp.Body, cancel)
	return resp, true, nil
}

// hopHeaders belong to one connection, not to the request (RFC 9110 7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func dropHopHeaders(h http.Header) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// copyAnswer copies the leader's answer to w.
func copyAnswer(w http.ResponseWriter, resp *http.Response) {
	dropHopHeaders(resp.Header)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// errNoLeader: no leader was elected within leaderWait.
var errNoLeader = &apiError{status: http.StatusServiceUnavailable, notApplied: true, msg: "the cluster has no leader now (is a quorum of managers up?); retry shortly"}

// errBecameLeader: while waiting for a leader, this manager won.
var errBecameLeader = errors.New("this manager became the leader")

// leaderWait is how long a write on a follower waits for an election to
// name a leader before it fails.
const leaderWait = 5 * time.Second

// leaderClusterAddr is where the leader's cluster port listens. During an
// election it waits (briefly) for one, so a write is not lost to a blip.
func (s *Server) leaderClusterAddr(ctx context.Context) (string, error) {
	deadline := time.Now().Add(leaderWait)
	_, id := s.raft.Leader()
	for id == "" && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		_, id = s.raft.Leader()
	}
	if s.raft.IsLeader() {
		return "", errBecameLeader
	}
	if id == "" {
		return "", errNoLeader
	}
	if cl := s.store.View().Cluster(); cl != nil {
		if m := cl.Manager(id); m != nil && m.ClusterAddr != "" {
			return m.ClusterAddr, nil
		}
	}
	return "", &apiError{status: http.StatusServiceUnavailable, notApplied: true, msg: "the leader's address is not known yet; retry shortly"}
}

// staleness sets the read headers.
func (s *Server) staleness(w http.ResponseWriter) {
	if s.raft.IsLeader() {
		w.Header().Set(HeaderLeader, s.cfg.Name)
		w.Header().Set(HeaderLastContact, "0")
		return
	}
	if _, id := s.raft.Leader(); id != "" {
		name := id
		if cl := s.store.View().Cluster(); cl != nil {
			if m := cl.Manager(id); m != nil {
				name = m.Name
			}
		}
		w.Header().Set(HeaderLeader, name)
	}
	if lc := s.raft.Stats()["last_contact"]; lc != "" {
		w.Header().Set(HeaderLastContact, lc)
	}
}
