package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
)

// fakeEngine serves just enough of the Engine API for the event stream:
// each /events request streams one die event, then ends the stream, as an
// engine restart would.
type fakeEngine struct {
	mu       sync.Mutex
	requests []string // raw query of each /events request
}

var versioned = regexp.MustCompile(`^/v[0-9.]+`)

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := versioned.ReplaceAllString(r.URL.Path, "")
	switch {
	case path == "/_ping":
		w.Header().Set("Api-Version", "1.41")
		fmt.Fprint(w, "OK")
	case path == "/events":
		f.mu.Lock()
		f.requests = append(f.requests, r.URL.RawQuery)
		n := len(f.requests)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"Type": "container", "Action": "die", "timeNano": time.Now().UnixNano(),
			"Actor": map[string]any{"ID": fmt.Sprintf("c%d", n)},
		})
	case regexp.MustCompile(`^/containers/c[0-9]+/json$`).MatchString(path):
		id := path[len("/containers/") : len(path)-len("/json")]
		_ = json.NewEncoder(w).Encode(map[string]any{
			"Id":     id,
			"Config": map[string]any{"Labels": map[string]string{LabelTask: "task-" + id}},
			"State":  map[string]any{"Status": "exited", "ExitCode": 7},
		})
	default:
		http.NotFound(w, r)
	}
}

func TestEventsReconnectAfterStreamEnds(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeEngine{}
	srv := &http.Server{Handler: fake}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := New(ctx, Config{NodeID: "n1", DataDir: t.TempDir(), Host: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	evCtx, stop := context.WithCancel(ctx)
	ch, _ := d.Events(evCtx)

	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case st := <-ch:
			if st.State != driver.StateExited || st.ExitCode != 7 {
				t.Fatalf("status %s", describe(st))
			}
			seen[st.TaskID] = true
		case <-ctx.Done():
			t.Fatalf("saw %v before the deadline; want events from two streams", seen)
		}
	}
	fake.mu.Lock()
	q := fake.requests[1]
	fake.mu.Unlock()
	if !regexp.MustCompile(`since=\d+`).MatchString(q) || !regexp.MustCompile(`berth.node`).MatchString(q) {
		t.Fatalf("reconnect query %q: want since= and the node label filter", q)
	}
	stop()
	for range ch { // the channel closes once the context ends
	}
}
