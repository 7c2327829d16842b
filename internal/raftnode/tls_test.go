package raftnode

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/state"
)

// rpcFrom sends one harmless raft RPC (an AppendEntries of term 0, which a
// server rejects without changing anything) to target over a transport
// whose TLS config is dialer, or plain TCP when dialer is nil.
func rpcFrom(t *testing.T, dialer *tls.Config, target string) error {
	t.Helper()
	var trans *raft.NetworkTransport
	if dialer == nil {
		var err error
		if trans, err = raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 1, 5*time.Second, hclog.NewNullLogger()); err != nil {
			t.Fatal(err)
		}
	} else {
		stream, err := listenTLS("127.0.0.1:0", nil, dialer)
		if err != nil {
			t.Fatal(err)
		}
		trans = raft.NewNetworkTransportWithLogger(stream, 1, 5*time.Second, hclog.NewNullLogger())
	}
	defer trans.Close()
	req := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("m9"), Addr: []byte(trans.LocalAddr()),
	}}
	var resp raft.AppendEntriesResponse
	return trans.AppendEntries("target", raft.ServerAddress(target), req, &resp)
}

func TestTLSClusterRefusesStrangers(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	ca, other := newTestCA(t, "cluster"), newTestCA(t, "other")
	servers := startCluster(t, ctx, 2, func(id string) *tls.Config { return ca.serverTLS(t, id) })
	res := apply(t, ctx, servers[0].node, upsertApp("web"))
	waitApplied(t, ctx, servers[1], res.(*state.UpsertResult).App.ModifyIndex)

	// A server of another cluster, started as a joining manager would be.
	foreign := startServer(t, Config{ID: "m9", DataDir: t.TempDir(), TLS: other.serverTLS(t, "m9")})
	leader := servers[0].node.Addr()

	trustsUs := other.serverTLS(t, "m9")
	trustsUs.RootCAs = ca.pool
	wrongName := ca.serverTLS(t, "m8")
	wrongName.ServerName = "berth-manager"
	for _, tc := range []struct {
		name    string
		dialer  *tls.Config
		target  string
		refused bool
	}{
		{"a member of the cluster", ca.serverTLS(t, "m8"), leader, false},
		{"a certificate another CA signed", trustsUs, leader, true},
		{"the other cluster's own config", other.serverTLS(t, "m9"), leader, true},
		{"no client certificate", &tls.Config{RootCAs: ca.pool}, leader, true},
		{"plain TCP", nil, leader, true},
		{"a peer whose certificate another CA signed", ca.serverTLS(t, "m8"), foreign.node.Addr(), true},
		{"a peer without the expected server name", wrongName, leader, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := rpcFrom(t, tc.dialer, tc.target)
			if tc.refused != (err != nil) {
				t.Errorf("RPC error %v, want refused=%v", err, tc.refused)
			}
		})
	}
}

func TestTLSConfigValidation(t *testing.T) {
	ca := newTestCA(t, "cluster")
	for _, tc := range []struct {
		name   string
		change func(*tls.Config)
		want   string
	}{
		{"no certificate", func(c *tls.Config) { c.Certificates = nil }, "no certificate"},
		{"client certificates optional", func(c *tls.Config) { c.ClientAuth = tls.VerifyClientCertIfGiven }, "require and verify"},
		{"no client CAs", func(c *tls.Config) { c.ClientCAs = nil }, "require and verify"},
		{"system roots", func(c *tls.Config) { c.RootCAs = nil }, "RootCAs"},
		{"server certificate only by callback", func(c *tls.Config) {
			c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c.Certificates[0], nil }
			c.Certificates = nil
		}, "client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ca.serverTLS(t, "m1")
			tc.change(cfg)
			st, _ := state.NewStore()
			n, err := New(Config{ID: "m1", DataDir: t.TempDir(), BindAddr: "127.0.0.1:0", TLS: cfg}, state.NewFSM(st, nil))
			if err == nil {
				_ = n.Shutdown()
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestTLSSilentPeerIsDropped(t *testing.T) {
	ca := newTestCA(t, "cluster")
	stream, err := listenTLS("127.0.0.1:0", nil, ca.serverTLS(t, "m1"))
	if err != nil {
		t.Fatal(err)
	}
	stream.handshakeTimeout = 100 * time.Millisecond
	trans := raft.NewNetworkTransportWithLogger(stream, 1, time.Second, hclog.NewNullLogger())
	defer trans.Close()

	conn, err := net.Dial("tcp", stream.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Say nothing; the server must give up on the handshake and hang up.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read from a server waiting for a handshake: err %v, want EOF (hung up)", err)
	}
}
