package server

import (
	"context"
	"slices"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/raftnode"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// takeOffice is a new leader's bookkeeping: commit a bootstrapped cluster's
// record, record this manager's addresses, and forget managers that are no
// longer in the Raft configuration (after --force-new-cluster).
func (s *Server) takeOffice(ctx context.Context) error {
	if err := s.commitBootstrap(ctx); err != nil {
		return err
	}
	self := types.Manager{ID: s.id, Name: s.cfg.Name, RaftAddr: s.raft.Addr(), APIAddr: s.Addr(), ClusterAddr: s.ClusterAddr()}
	if _, err := s.Commit(ctx, &state.UpsertManager{Manager: self}); err != nil {
		return err
	}
	servers, err := s.raft.Servers(ctx)
	if err != nil {
		return err
	}
	cl := s.store.View().Cluster()
	for _, m := range cl.Managers {
		if !slices.ContainsFunc(servers, func(sv raftnode.Server) bool { return sv.ID == m.ID }) && m.ID != s.id {
			if _, err := s.Commit(ctx, &state.RemoveManager{ID: m.ID}); err != nil {
				return err
			}
		}
	}
	return nil
}

// becomeVoter asks the cluster, through the manager this one joined, to
// add it as a Raft voter; it retries until that succeeds or ctx ends.
func (s *Server) becomeVoter(ctx context.Context) {
	c := api.NewClient("https://"+s.cfg.Join, api.WithTLS(s.creds.live.ClientTLS(pki.RoleManager.ServerName())))
	for {
		err := s.voterReady()
		if err == nil {
			err = c.AddMember(ctx, api.AddMemberRequest{ID: s.id, RaftAddr: s.cfg.RaftAddr})
		}
		if err == nil {
			s.log.Info("this manager is a voter of the cluster")
			return
		}
		s.log.Warn("asking to become a voter failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
