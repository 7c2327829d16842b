package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/berth-dev/berth/internal/pki"
)

// Headers on reads: who leads, and how long ago this manager heard from it
// ("0" on the leader), so a client knows how stale an answer may be.
const (
	HeaderLeader      = "X-Berth-Leader"
	HeaderLastContact = "X-Berth-Last-Contact"
)

// onLeader wraps a write handler: on the leader it runs; on a follower the
// request, already authenticated here, goes to the leader's cluster port
// over mutual TLS with this manager's certificate (an agent's node ID rides
// along in HeaderForwardedNode).
func (s *Server) onLeader(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.raft.IsLeader() {
			return next(w, r)
		}
		target, err := s.leaderClusterAddr(r.Context())
		if errors.Is(err, errBecameLeader) {
			return next(w, r)
		}
		if err != nil {
			return err
		}
		p := peerOf(r.Context())
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(&url.URL{Scheme: "https", Host: target})
				pr.Out.Header.Del(HeaderForwardedNode)
				if p.role == pki.RoleWorker {
					pr.Out.Header.Set(HeaderForwardedNode, p.nodeID)
				}
			},
			Transport: s.managerTransport,
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				writeError(w, &apiError{status: http.StatusBadGateway, msg: "the leader at " + target + " did not answer a forwarded request: " + err.Error()})
			},
		}
		proxy.ServeHTTP(w, r)
		return nil
	}
}

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
		return "", &apiError{status: http.StatusServiceUnavailable, msg: "the cluster has no leader now (is a quorum of managers up?); retry shortly"}
	}
	if cl := s.store.View().Cluster(); cl != nil {
		if m := cl.Manager(id); m != nil && m.ClusterAddr != "" {
			return m.ClusterAddr, nil
		}
	}
	return "", &apiError{status: http.StatusServiceUnavailable, msg: "the leader's address is not known yet; retry shortly"}
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
