package api

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
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
