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
)

// HeaderUnhealthy, on an answer, says why the manager cannot write its
// data directory; such a manager sends no X-Berth-Last-Contact, since its
// state may lag the cluster's for as long as the disk stays full.
const HeaderUnhealthy = "X-Berth-Unhealthy"

const (
	// peerStatusTimeout bounds asking another manager for its status (a
	// frozen or cut-off one must not hold `server members` up for long).
	peerStatusTimeout = time.Second
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

// freshJoin reports whether this run is to join a cluster for the first
// time: --join given and no identity from an earlier join.
func freshJoin(cfg Config) bool {
	if cfg.Join == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(cfg.DataDir, pkiDir))
	return errors.Is(err, os.ErrNotExist)
}

// checkJoinDisk refuses, before anything is written or asked, to join a
// cluster with a data directory that lacks the room or takes no writes:
// such a manager would be counted in, then fail. A manager that joined
// before (it has its identity) is not checked again.
func checkJoinDisk(cfg Config, joining bool) error {
	if !joining {
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
// others' as they report it (left empty for one that is unreachable or
// does not answer).
func (s *Server) memberHealth(ctx context.Context, ms []api.Member) {
	var wg sync.WaitGroup
	for i := range ms {
		m := &ms[i]
		if m.ID == s.id {
			setHealth(m, s.diskProblem())
			continue
		}
		if m.ClusterAddr == "" || !m.Reachable {
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

// voterReady is nil when this manager, joined and waiting to become a
// voter, can take the cluster's log: one that cannot write its disk waits
// rather than be added and removed again.
func (s *Server) voterReady() error {
	if p := s.diskProblem(); p != "" {
		return fmt.Errorf("not asking to become a voter while the data directory cannot take writes: %s", p)
	}
	return nil
}
