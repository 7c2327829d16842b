package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
)

// TestDeadJoinerLeavesNoGhost: a manager joins (token, certificate,
// record) and asks to become a voter, but nothing of it answers: a joiner
// that died, or whose disk failed, after joining. The leader removes it
// again within voterConfirmWait, says why, and goes on committing alone;
// before the fix it made it a voter straight away, and a one-manager
// cluster lost its quorum to the ghost.
func TestDeadJoinerLeavesNoGhost(t *testing.T) {
	old := voterConfirmWait
	voterConfirmWait = 2 * time.Second
	t.Cleanup(func() { voterConfirmWait = old })
	s, c := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	token, err := s.openToken(s.store.View().Cluster(), pki.RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pki.ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("0123456789abcdef", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dead := closedHostPort(t)
	resp, err := api.NewClient(s.ClusterAddr(), api.WithTLS(pki.PinnedTLS(tok.Fingerprint))).Join(ctx, api.JoinRequest{
		Token: token, Role: "manager", Name: "ghost", CSR: csrPEM, RaftAddr: dead, APIAddr: dead, ClusterAddr: dead,
	})
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.NewIdentity(resp.CAPEM, resp.CertPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	mc := api.NewClient(s.ClusterAddr(), api.WithTLS(id.ClientTLS(pki.RoleManager.ServerName())))

	err = mc.AddMember(ctx, api.AddMemberRequest{ID: resp.NodeID, RaftAddr: dead})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || !strings.Contains(ae.Message, "did not catch up with the cluster") {
		t.Fatalf("AddMember of a dead joiner: %v, want 409 saying it did not catch up", err)
	}
	servers, err := s.raft.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 1 || servers[0].ID != s.id {
		t.Errorf("raft servers %+v, want the leader alone", servers)
	}
	if cl := s.store.View().Cluster(); cl.Manager(resp.NodeID) != nil {
		t.Errorf("the dead joiner's record stays: %+v", cl.Manager(resp.NodeID))
	}
	ms, err := c.Members(ctx)
	if err != nil || len(ms) != 1 {
		t.Errorf("members %+v (%v), want the leader alone", ms, err)
	}
	if _, err := c.SubmitApp(ctx, validApp()); err != nil {
		t.Errorf("the leader no longer commits: %v", err)
	}
}

// closedHostPort is a loopback host:port nothing listens on.
func closedHostPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestFailedJoinIsWithdrawn: a manager joins, then cannot start (its Raft
// port is taken): the cluster forgets the record the join made (no ghost
// handed to agents as a manager), and the manager forgets its identity so
// that its next start joins afresh.
func TestFailedJoinIsWithdrawn(t *testing.T) {
	s, _ := startServer(t)
	token, err := s.openToken(s.store.View().Cluster(), pki.RoleManager)
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	_, err = New(Config{DataDir: dir, HTTPAddr: closedHostPort(t), RaftAddr: taken.Addr().String(), ClusterAddr: closedHostPort(t),
		Join: s.ClusterAddr(), JoinToken: token, Name: "m2"})
	if err == nil || !strings.Contains(err.Error(), "the join was withdrawn") {
		t.Fatalf("New with its Raft port taken: %v, want a failure saying the join was withdrawn", err)
	}
	if ms := s.store.View().Cluster().Managers; len(ms) != 1 || ms[0].ID != s.id {
		t.Errorf("manager records %+v, want the leader's alone", ms)
	}
	if _, err := os.Stat(filepath.Join(dir, pkiDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the withdrawn join's identity stays (%v): a restart would not join again", err)
	}
}
