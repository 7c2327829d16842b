package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/raftnode"
	"github.com/berth-dev/berth/internal/state"
)

// HeaderUnhealthy, on an answer, says why the manager cannot write its
// data directory; such a manager sends no X-Berth-Last-Contact, since its
// state may lag the cluster's for as long as the disk stays full.
const HeaderUnhealthy = "X-Berth-Unhealthy"

const (
	// peerStatusTimeout bounds asking another manager for its status.
	peerStatusTimeout = 2 * time.Second
	// voterConfirmWait is how long a manager just added as a voter has to
	// show it works (answers, healthy, caught up) before it is removed.
	voterConfirmWait = 60 * time.Second
)

// diskProblem is why this manager cannot write its data directory, or ""
// when it can.
func (s *Server) diskProblem() string {
	if h := s.raft.DiskHealth(); !h.Healthy {
		return h.Problem
	}
	return ""
}

// unhealthyRead runs before every read. A manager that cannot write its
// data directory cannot append what the leader sends, so its answers may
// be stale for ever: it answers 503 (clients and agents go to another
// manager), except for status and members, which report the problem.
func (s *Server) unhealthyRead(w http.ResponseWriter, r *http.Request) error {
	problem := s.diskProblem()
	if problem == "" {
		return nil
	}
	w.Header().Del(HeaderLastContact)
	w.Header().Set(HeaderUnhealthy, strings.Map(func(c rune) rune {
		if c < ' ' {
			return ' '
		}
		return c
	}, problem))
	if r.URL.Path == api.PathStatus || r.URL.Path == api.PathMembers {
		return nil
	}
	return &apiError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf(
		"manager %s cannot write its data directory (%s), so its answers may be stale: ask another manager; it recovers by itself once the directory takes writes again",
		s.cfg.Name, problem)}
}

// checkJoinDisk refuses, before anything is written or asked, to join a
// cluster with a data directory that lacks the room or takes no writes:
// such a manager would be counted in, then fail. A manager that joined
// before (it has its identity) is not checked again.
func checkJoinDisk(cfg Config) error {
	if cfg.Join == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, pkiDir)); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := raftnode.CheckDataDir(cfg.DataDir); err != nil {
		return fmt.Errorf("refusing to join the cluster at %s: %w; free some space there or choose another --data-dir", cfg.Join, err)
	}
	return nil
}

// peerStatus asks another manager's cluster port for its status, with
// this manager's certificate.
func (s *Server) peerStatus(ctx context.Context, clusterAddr string) (*api.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, peerStatusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+clusterAddr+api.PathStatus, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: s.managerTransport}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status answered %s", resp.Status)
	}
	var st api.Status
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, api.MaxRequestBytes)).Decode(&st); err != nil {
		return nil, fmt.Errorf("read the status: %w", err)
	}
	return &st, nil
}

// memberHealth fills in each member's health: this manager's own, the
// others' as they report it (left empty for one that does not answer).
func (s *Server) memberHealth(ctx context.Context, ms []api.Member) {
	var wg sync.WaitGroup
	for i := range ms {
		m := &ms[i]
		if m.ID == s.id {
			setHealth(m, s.diskProblem())
			continue
		}
		if m.ClusterAddr == "" {
			continue
		}
		wg.Go(func() {
			if st, err := s.peerStatus(ctx, m.ClusterAddr); err == nil {
				setHealth(m, st.Unhealthy)
			}
		})
	}
	wg.Wait()
}

func setHealth(m *api.Member, problem string) {
	m.Health, m.Problem = api.HealthOK, problem
	if problem != "" {
		m.Health = api.HealthUnhealthy
	}
}

// confirmVoter waits until a manager just made a voter shows that it
// works: it answers, healthy, with its state at index or past it. One
// that does not within voterConfirmWait (it died, or cannot write its
// disk) is removed again, so that it is no ghost voter counting against
// the quorum. The wait does not end with the request: a removal must not
// hang on a client that gave up.
func (s *Server) confirmVoter(ctx context.Context, id, clusterAddr string, index uint64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), voterConfirmWait)
	defer cancel()
	why := "it did not answer"
	for {
		st, err := s.peerStatus(ctx, clusterAddr)
		switch {
		case err != nil:
			why = "it did not answer: " + err.Error()
		case st.Unhealthy != "":
			why = "it reports: " + st.Unhealthy
		case st.Index >= index:
			return nil
		default:
			why = fmt.Sprintf("its state reached index %d of %d", st.Index, index)
		}
		select {
		case <-ctx.Done():
			return s.dropVoter(id, why)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// dropVoter removes a manager that did not confirm, and says why.
func (s *Server) dropVoter(id, why string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.log.Warn("removing a manager added as a voter that does not work", "id", id, "why", why)
	err := s.raft.RemoveServer(ctx, id)
	if err == nil {
		_, err = s.Commit(ctx, &state.RemoveManager{ID: id})
	}
	if err != nil {
		return fmt.Errorf("manager %s did not work as a voter (%s) and removing it failed: %w; remove it once the cluster has a leader (DELETE %s)", id, why, err, api.PathMember)
	}
	return &apiError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf(
		"manager %s was added as a voter but did not catch up within %s (%s), so it was removed again: check its log and its data directory, then start it again",
		id, voterConfirmWait, why)}
}

// voterReady reports whether this manager, joined and waiting to become a
// voter, can take the cluster's log: a manager that cannot write its disk
// waits rather than be added and removed again.
func (s *Server) voterReady() bool {
	if p := s.diskProblem(); p != "" {
		s.log.Warn("not asking to become a voter while the data directory cannot take writes", "problem", p)
		return false
	}
	return true
}
