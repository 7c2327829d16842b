package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/state"
)

// voterConfirmWait is how long a joined manager has to show that it works
// (answers, healthy, caught up) before it is removed again. A variable so
// that tests need not wait a minute.
var voterConfirmWait = 60 * time.Second

// admitVoter makes a joined manager a voter in two steps: a nonvoter
// first, which gets the log but counts in no quorum, then a voter once it
// shows that it works. A joiner that dies or cannot write its disk is
// removed again and never was a ghost voter: added straight as a voter, a
// dead one would have counted against the quorum (in a one-manager
// cluster, stopped it). A manager that is already a voter (restarting)
// only has its address updated.
func (s *Server) admitVoter(ctx context.Context, id, raftAddr, clusterAddr string) error {
	servers, err := s.raft.Servers(ctx)
	if err != nil {
		return err
	}
	for _, sv := range servers {
		if sv.ID == id && sv.Voter {
			return s.raft.AddVoter(ctx, id, raftAddr)
		}
	}
	if err := s.raft.AddNonvoter(ctx, id, raftAddr); err != nil {
		return err
	}
	if err := s.confirmVoter(ctx, id, clusterAddr, s.store.View().Index()); err != nil {
		return err
	}
	return s.raft.AddVoter(ctx, id, raftAddr)
}

// confirmVoter waits until a manager just made a nonvoter shows that it
// works: it answers, healthy, with its state at index or past it. One
// that does not within voterConfirmWait (it died, or cannot write its
// disk) is removed again. The wait does not end with the request: a
// removal must not hang on a client that gave up.
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
	s.log.Warn("removing a joined manager that did not catch up", "id", id, "why", why)
	err := s.raft.RemoveServer(ctx, id)
	if err == nil {
		_, err = s.Commit(ctx, &state.RemoveManager{ID: id})
	}
	if err != nil {
		return fmt.Errorf("manager %s did not catch up with the cluster (%s) and removing it failed: %w; remove it once the cluster has a leader (DELETE %s)", id, why, err, api.PathMember)
	}
	// A final answer, not a transient 503: clients retry those, and a
	// retry would only find the record gone.
	return &apiError{status: http.StatusConflict, msg: fmt.Sprintf(
		"manager %s joined but did not catch up with the cluster within %s (%s), so it was removed again: check its log and its data directory, then start it again",
		id, voterConfirmWait, why)}
}

// withdrawJoin undoes a join this run made (joining) when the manager then
// fails to start, say because its disk filled or a port is taken: the
// cluster forgets the record it made at the join, which would otherwise
// stay and be handed to agents as a manager to reach, and this manager
// forgets its identity, so that a start once the cause is fixed joins
// afresh. It returns cause, saying what became of the join.
func (s *Server) withdrawJoin(joining bool, cause error) error {
	if !joining {
		return cause
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := api.NewClient("https://"+s.cfg.Join, api.WithTLS(s.creds.live.ClientTLS(pki.RoleManager.ServerName())))
	if err := c.RemoveMember(ctx, s.id); err != nil {
		s.log.Warn("could not withdraw the join", "manager", s.cfg.Join, "err", err)
		return fmt.Errorf("%w (the cluster may still list this manager %s: start it again once fixed)", cause, s.id)
	}
	for _, p := range []string{pkiDir, sealingFile} {
		if err := os.RemoveAll(filepath.Join(s.cfg.DataDir, p)); err != nil {
			s.log.Warn("could not remove the identity of the withdrawn join", "err", err)
		}
	}
	return fmt.Errorf("%w (the join was withdrawn: start again once that is fixed)", cause)
}
