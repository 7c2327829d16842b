package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// A client given several managers fails over from one that does not
// answer to the next, and stays with the one that works.
func TestClientFailsOverToReachableManager(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"version":"x","leader":true}`))
	}))
	defer ok.Close()
	// An address where nothing listens: bind, note it, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	c := NewClient("http://" + dead)
	if _, err := c.Status(context.Background()); err == nil {
		t.Fatal("a dead manager answered")
	}
	c.SetAddrs([]string{dead, ok.Listener.Addr().String(), ok.Listener.Addr().String()})
	st, err := c.Status(context.Background())
	if err != nil || !st.Leader {
		t.Fatalf("after SetAddrs: %+v %v", st, err)
	}
	if c.Addr() != ok.URL {
		t.Fatalf("client uses %s, want %s", c.Addr(), ok.URL)
	}
	// An answer with an error is not a reason to fail over.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"nope"}`, http.StatusBadRequest)
	}))
	defer bad.Close()
	c2 := NewClient(bad.URL)
	c2.SetAddrs([]string{ok.Listener.Addr().String()})
	if _, err := c2.Status(context.Background()); err == nil || c2.Addr() != bad.URL {
		t.Fatalf("failed over on an error answer: %v, now at %s", err, c2.Addr())
	}
}

func TestRoundTripperCarriesTheToken(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get(HeaderAuthorization)
	}))
	defer srv.Close()
	c := NewClient(srv.URL, WithToken("s3cret"))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
	resp, err := c.RoundTripper().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "Bearer s3cret" || req.Header.Get(HeaderAuthorization) != "" {
		t.Fatalf("the manager saw %q (the caller's request has %q)", got, req.Header.Get(HeaderAuthorization))
	}
}

// TestClientReusesItsConnection: answers as the server writes them (a
// long JSON list, chunked, and the encoder's newline) leave the connection
// for the next call: 20 calls, one connection. Before the client read each answer to its end,
// every call opened a connection (a TLS handshake each, on a cluster).
func TestClientReusesItsConnection(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A long answer goes chunked, whose end the decoder does not read.
		nodes := make([]*types.Node, 500)
		for i := range nodes {
			nodes[i] = &types.Node{ID: fmt.Sprintf("node-%d", i), Name: "n"}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(nodes)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := NewClient(srv.URL)
	for range 20 {
		if _, err := c.ListNodes(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 calls opened %d connections, want 1", n)
	}
}
