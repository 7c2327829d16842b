package raftnode

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// Server is one member of the Raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
	// Leader is true for the server this one believes leads now.
	Leader bool `json:"leader"`
}

// AddVoter adds a server (or updates its address) as a voter. Leader only.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, enqueueTimeout(ctx))
	if err := wait(ctx, f); err != nil {
		return fmt.Errorf("add raft voter %s at %s: %w", id, addr, err)
	}
	return nil
}

// RemoveServer removes a server from the configuration. Leader only.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if err := wait(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, enqueueTimeout(ctx))); err != nil {
		return fmt.Errorf("remove raft server %s: %w", id, err)
	}
	return nil
}

// Servers returns the latest Raft configuration known to this server, in
// its order, marking the leader this server knows of. Any server can
// answer; a follower's view may lag the leader's by a configuration change.
func (n *Node) Servers(ctx context.Context) ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := wait(ctx, f); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	_, leader := n.raft.LeaderWithID()
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{
			ID: string(s.ID), Address: string(s.Address),
			Voter: s.Suffrage == raft.Voter, Leader: leader != "" && s.ID == leader,
		})
	}
	return out, nil
}

// AddNonvoter adds a server (or updates its address) as a nonvoter: it
// receives the log but does not count in the quorum, so a server that
// turns out not to work costs the cluster nothing. Leader only.
func (n *Node) AddNonvoter(ctx context.Context, id, addr string) error {
	f := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, enqueueTimeout(ctx))
	if err := wait(ctx, f); err != nil {
		return fmt.Errorf("add raft nonvoter %s at %s: %w", id, addr, err)
	}
	return nil
}
