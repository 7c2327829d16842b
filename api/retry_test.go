package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// hangingServer accepts requests and answers none until the test ends, as
// a manager stopped with SIGSTOP (the kernel still accepts connections).
func hangingServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, &hits
}

func okServer(t *testing.T, hits *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		w.Header().Set(HeaderIndex, "7")
		_, _ = w.Write([]byte(`{"version":"x","leader":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func hostport(s *httptest.Server) string { return s.Listener.Addr().String() }

// A manager that accepts and never answers is left for the next one
// within the attempt's deadline, and the client stays with the one that
// answers.
func TestClientFailsOverFromHangingManager(t *testing.T) {
	hang, _ := hangingServer(t)
	ok := okServer(t, nil)
	c := NewClient(hang.URL, WithTimeouts(200*time.Millisecond, 5*time.Second))
	c.SetAddrs([]string{hostport(hang), hostport(ok)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	st, err := c.Status(ctx)
	if err != nil || !st.Leader {
		t.Fatalf("status through a hanging manager: %+v %v", st, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("failing over took %s, want about one attempt's timeout (200ms)", took)
	}
	if c.Addr() != ok.URL {
		t.Errorf("client uses %s, want %s", c.Addr(), ok.URL)
	}
}

// A blocking query gets its wait on top of the attempt's deadline: a
// manager that holds the answer for the wait is not taken for a hanging
// one, and one that holds it far longer is.
func TestBlockingQueryDeadlineIsWaitPlusMargin(t *testing.T) {
	const wait = 600 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hold, _ := time.ParseDuration(r.URL.Query().Get("wait"))
		if r.URL.Query().Get("app") == "slow" {
			hold = time.Hour
		}
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
			return
		}
		w.Header().Set(HeaderIndex, "9")
		_, _ = w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	c := NewClient(srv.URL, WithTimeouts(200*time.Millisecond, 0))
	ctx := context.Background()
	_, meta, err := c.ListTasks(ctx, TaskQuery{QueryOptions: QueryOptions{Index: 5, Wait: wait}})
	if err != nil || meta.Index != 9 {
		t.Fatalf("blocking query held for its wait: index %d, %v", meta.Index, err)
	}
	start := time.Now()
	_, _, err = c.ListTasks(ctx, TaskQuery{App: "slow", QueryOptions: QueryOptions{Index: 5, Wait: wait}})
	if err == nil || !strings.Contains(err.Error(), "did not answer within") {
		t.Fatalf("a query held far past its wait: %v, want a timeout", err)
	}
	if took, want := time.Since(start), wait+blockingMargin; took < want || took > want+3*time.Second {
		t.Errorf("timed out after %s, want after the wait and the margin (%s)", took, want)
	}
}

// When one request finds a manager unresponsive, the others waiting on it
// (a blocking query) move to the next manager too, instead of waiting out
// their own, longer deadline.
func TestFailoverMovesRequestsInFlight(t *testing.T) {
	hang, _ := hangingServer(t)
	var okHits atomic.Int32
	ok := okServer(t, &okHits)
	c := NewClient(hang.URL, WithTimeouts(300*time.Millisecond, 10*time.Second))
	c.SetAddrs([]string{hostport(hang), hostport(ok)})
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := c.NodeTasks(context.Background(), "n1", QueryOptions{Index: 3, Wait: time.Minute})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the query is in flight on hang
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done: // answered by ok (its body is not NodeTasks; any answer will do)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("the blocking query moved after %s", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking query stayed on the hanging manager")
	}
	if okHits.Load() < 2 {
		t.Errorf("the other manager served %d requests, want the status and the query", okHits.Load())
	}
}

// failingServer answers the first n requests with code, then 200.
func failingServer(t *testing.T, code, n int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if int(hits.Add(1)) <= n {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(`{"error":"the cluster has no leader now; retry shortly"}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// During an election a manager answers 502 or 503: idempotent writes are
// retried until they go through; a write that is not idempotent fails at
// once, saying its outcome is unknown; an answer that is not about the
// leader is not retried.
func TestWritesRetriedThroughAnElection(t *testing.T) {
	app := &types.App{Name: "a"}
	cases := []struct {
		name      string
		code      int
		call      func(c *Client) error
		wantHits  int32
		wantErr   bool
		wantUnkwn bool
	}{
		{"put app on 503", 503, func(c *Client) error { _, err := c.SubmitApp(context.Background(), app); return err }, 3, false, false},
		{"put app on 502", 502, func(c *Client) error { _, err := c.SubmitApp(context.Background(), app); return err }, 3, false, false},
		{"scale on 503", 503, func(c *Client) error { return c.Scale(context.Background(), "a", "web", 3) }, 3, false, false},
		{"delete on 502", 502, func(c *Client) error { return c.DeleteApp(context.Background(), "a", false) }, 3, false, false},
		{"rotate token on 502", 502, func(c *Client) error { _, err := c.RotateToken(context.Background(), "worker"); return err }, 1, true, true},
		{"put app on 500", 500, func(c *Client) error { _, err := c.SubmitApp(context.Background(), app); return err }, 1, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := failingServer(t, tc.code, 2)
			c := NewClient(srv.URL, WithTimeouts(time.Second, 5*time.Second))
			err := tc.call(c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if got := errors.Is(err, ErrOutcomeUnknown); got != tc.wantUnkwn {
				t.Errorf("outcome unknown: %v, want %v (err %v)", got, tc.wantUnkwn, err)
			}
			if tc.wantUnkwn && !strings.Contains(err.Error(), "outcome unknown") {
				t.Errorf("error %q does not say the outcome is unknown", err)
			}
			if hits.Load() != tc.wantHits {
				t.Errorf("%d requests, want %d", hits.Load(), tc.wantHits)
			}
		})
	}
}

// An idempotent write whose retries run out after a manager may have
// taken it says its outcome is unknown.
func TestRetriesRunOutOutcomeUnknown(t *testing.T) {
	srv, _ := failingServer(t, 503, 1000)
	c := NewClient(srv.URL, WithTimeouts(time.Second, 300*time.Millisecond))
	_, err := c.SubmitApp(context.Background(), &types.App{Name: "a"})
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want outcome unknown", err)
	}
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 503 {
		t.Errorf("the manager's answer is lost in %v", err)
	}
	// A read is only an error.
	if _, err := c.ListApps(context.Background()); err == nil || errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("read: %v, want a plain error", err)
	}
	// A manager that found no leader at all says the write was not done.
	none := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderNotApplied, "true")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"the cluster has no leader now (is a quorum of managers up?); retry shortly"}`))
	}))
	defer none.Close()
	c2 := NewClient(none.URL, WithTimeouts(time.Second, 300*time.Millisecond))
	if err := c2.Scale(context.Background(), "a", "web", 2); err == nil || errors.Is(err, ErrOutcomeUnknown) || !strings.Contains(err.Error(), "no leader") {
		t.Errorf("write refused for want of a leader: %v, want the manager's error only", err)
	}
}

// breakingServer drops the connection of the first n requests after
// reading them whole (the write may have been done), then answers.
func breakingServer(t *testing.T, n int, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if int(hits.Add(1)) <= n {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// A connection that breaks after the request was sent: an idempotent
// write is sent again; one that is not fails with "outcome unknown"; a
// DELETE whose retry finds nothing to delete succeeded the first time.
func TestBrokenConnectionAfterSend(t *testing.T) {
	ok := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) }
	gone := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"node x not found"}`))
	}
	srv, hits := breakingServer(t, 1, ok)
	c := NewClient(srv.URL, WithTimeouts(time.Second, 5*time.Second))
	if _, err := c.SubmitApp(context.Background(), &types.App{Name: "a"}); err != nil || hits.Load() != 2 {
		t.Fatalf("PUT after a broken connection: %v after %d requests, want success after 2", err, hits.Load())
	}
	srv2, hits2 := breakingServer(t, 1, ok)
	c2 := NewClient(srv2.URL, WithTimeouts(time.Second, 5*time.Second))
	_, err := c2.Join(context.Background(), JoinRequest{Token: "t"})
	if !errors.Is(err, ErrOutcomeUnknown) || hits2.Load() != 1 {
		t.Fatalf("join after a broken connection: %v after %d requests, want outcome unknown after 1", err, hits2.Load())
	}
	srv3, _ := breakingServer(t, 1, gone)
	c3 := NewClient(srv3.URL, WithTimeouts(time.Second, 5*time.Second))
	if err := c3.RemoveNode(context.Background(), "x", true); err != nil {
		t.Fatalf("DELETE retried after a broken connection found nothing: %v, want success", err)
	}
}

// Nothing listening on the only manager fails at once: no retrying for
// an election that is not happening.
func TestRefusedConnectionFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	c := NewClient(dead)
	start := time.Now()
	if _, err := c.SubmitApp(context.Background(), &types.App{Name: "a"}); err == nil || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("write to nothing: %v, want a plain error", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("failing took %s", took)
	}
	// Even without retries, the next manager gets a request the first
	// never saw.
	ok := okServer(t, nil)
	c2 := NewClient(dead, WithTimeouts(time.Second, 0))
	c2.SetAddrs([]string{dead, hostport(ok)})
	if _, err := c2.Status(context.Background()); err != nil {
		t.Fatalf("status past a dead manager without retries: %v", err)
	}
}

// A stream with heartbeats survives a quiet source and is cut, with an
// error that says so, when the manager stops sending anything.
func TestStreamHeartbeatsAndIdleCut(t *testing.T) {
	const every = 100 * time.Millisecond
	var mu sync.Mutex
	silent := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderHeartbeat) == "" {
			t.Errorf("stream request without %s", HeaderHeartbeat)
		}
		w.Header().Set(HeaderHeartbeat, every.String())
		rc := http.NewResponseController(w)
		fw := NewFrameWriter(w, rc.Flush)
		_, _ = fw.Write([]byte("line 1\n"))
		deadline := time.Now().Add(10 * every)
		for time.Now().Before(deadline) {
			time.Sleep(every / 2)
			_ = fw.Beat(every)
		}
		_, _ = fw.Write([]byte("line 2\n"))
		mu.Lock()
		silent = true
		mu.Unlock()
		<-r.Context().Done() // frozen: nothing more, not even heartbeats
	}))
	defer srv.Close()
	c := NewClient(srv.URL)
	rc, err := c.TaskLogs(context.Background(), "t1", LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start := time.Now()
	b, err := io.ReadAll(rc)
	if string(b) != "line 1\nline 2\n" {
		t.Errorf("stream read %q", b)
	}
	if err == nil || !strings.Contains(err.Error(), "not even a heartbeat") {
		t.Fatalf("stream ended with %v, want it cut for silence", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !silent || time.Since(start) > 5*time.Second {
		t.Errorf("cut after %s (silent: %v), want after the 1s of heartbeats and about 3 missed ones", time.Since(start), silent)
	}
}

// Frames round-trip, heartbeats vanish, and a frame too big is refused.
func TestFrames(t *testing.T) {
	var buf strings.Builder
	fw := NewFrameWriter(&buf, nil)
	_, _ = fw.Write([]byte("hello "))
	_ = fw.Beat(0)
	_, _ = fw.Write([]byte("world"))
	_ = fw.Beat(0)
	got, err := io.ReadAll(NewFrameReader(strings.NewReader(buf.String())))
	if err != nil || string(got) != "hello world" {
		t.Fatalf("read %q, %v", got, err)
	}
	huge := string([]byte{0xff, 0xff, 0xff, 0x7f})
	if _, err := io.ReadAll(NewFrameReader(strings.NewReader(huge))); err == nil {
		t.Fatal("a frame of 256 MB was accepted")
	}
	if _, err := io.ReadAll(NewFrameReader(strings.NewReader("\x05ab"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut frame: %v", err)
	}
}

// A manager that is slow to answer one request but answers the client's
// others is waited for past the attempt's deadline (up to slowFor), on the
// same connection: cancelling would close it and move every request
// elsewhere. One that answers nothing is still left at the deadline.
func TestSlowManagerThatAnswersIsWaitedFor(t *testing.T) {
	const timeout, hold = 200 * time.Millisecond, 500 * time.Millisecond
	var closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/apps/") {
			select {
			case <-time.After(hold):
			case <-r.Context().Done():
				return
			}
			_, _ = w.Write([]byte(`{"name":"web"}`))
			return
		}
		_, _ = w.Write([]byte(`{"version":"x","leader":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	hang, _ := hangingServer(t)
	c := NewClient(srv.URL, WithTimeouts(timeout, 5*time.Second))
	c.SetAddrs([]string{hostport(srv), hostport(hang)})
	ctx := context.Background()

	// The other requests: answered within the deadline, all along.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				_, _ = c.Status(ctx)
			}
		}
	})
	app, err := c.GetApp(ctx, "web")
	close(stop)
	wg.Wait()
	if err != nil || app.Name != "web" {
		t.Fatalf("a slow answer from a manager that answers others: %+v %v; want it waited for", app, err)
	}
	if c.Addr() != srv.URL {
		t.Errorf("the client moved to %s; want it to stay with %s", c.Addr(), srv.URL)
	}
	if n := closed.Load(); n != 0 {
		t.Errorf("%d connections closed; want the slow request's kept", n)
	}

	// Alone, the same slow answer is past the deadline: left.
	alone := NewClient(srv.URL, WithTimeouts(timeout, 0))
	start := time.Now()
	if _, err := alone.GetApp(ctx, "web"); err == nil || !strings.Contains(err.Error(), "did not answer within") {
		t.Fatalf("a slow answer with nothing else heard: %v; want a timeout", err)
	}
	if took := time.Since(start); took < timeout || took > hold {
		t.Errorf("left after %s; want at the deadline (%s), before the answer (%s)", took, timeout, hold)
	}
}
