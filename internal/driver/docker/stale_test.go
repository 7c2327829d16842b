package docker

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// staleEngine answers the few Engine API calls of an app's teardown as
// Docker 20.10 does when it kept the endpoint of a container that is gone:
// the network's removal is refused ("has active endpoints") until the
// endpoint is force-disconnected. The bug cannot be made to happen on
// purpose against a real engine, so this plays it.
type staleEngine struct {
	mu         sync.Mutex
	endpoints  map[string]string // container ID -> name, on network n1
	live       map[string]bool   // containers the engine still has
	disconnect []string          // forced disconnects asked for
	removed    bool
	leaked     bool // the endpoint count leaked: removal refused with no endpoint
}

// engineCall is the Engine API path of r (without its version) and how to
// answer it with JSON.
func engineCall(w http.ResponseWriter, r *http.Request) (string, func(int, any)) {
	return strings.TrimPrefix(r.URL.Path, "/v1.41"), func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
}

func (e *staleEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	path, reply := engineCall(w, r)
	switch {
	case r.Method == http.MethodGet && path == "/networks":
		if e.removed {
			reply(200, []any{})
			return
		}
		reply(200, []map[string]any{{"Name": "app_default", "Id": "n1"}})
	case r.Method == http.MethodDelete && path == "/networks/n1":
		if len(e.endpoints) > 0 || e.leaked {
			reply(403, map[string]string{"message": "error while removing network: network app_default id n1 has active endpoints"})
			return
		}
		e.removed = true
		w.WriteHeader(204)
	case r.Method == http.MethodGet && path == "/networks/n1":
		cs := map[string]any{}
		for id, name := range e.endpoints {
			cs[id] = map[string]string{"Name": name}
		}
		reply(200, map[string]any{"Name": "app_default", "Id": "n1", "Containers": cs})
	case r.Method == http.MethodPost && path == "/networks/n1/disconnect":
		var req struct {
			Container string
			Force     bool
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		e.disconnect = append(e.disconnect, req.Container)
		if _, ok := e.endpoints[req.Container]; !ok || !req.Force {
			reply(404, map[string]string{"message": "no such endpoint"})
			return
		}
		delete(e.endpoints, req.Container)
		reply(200, map[string]any{})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/containers/") && strings.HasSuffix(path, "/json"):
		id := strings.TrimSuffix(strings.TrimPrefix(path, "/containers/"), "/json")
		if !e.live[id] {
			reply(404, map[string]string{"message": "No such container: " + id})
			return
		}
		reply(200, map[string]any{"Id": id, "State": map[string]any{"Status": "running"}})
	default:
		reply(404, map[string]string{"message": "unexpected " + r.Method + " " + path})
	}
}

// TestRemoveAppDropsStaleEndpoints: an endpoint whose container is gone is
// force-disconnected and the network removed; one of a container that still
// exists is left, and the removal fails saying why.
func TestRemoveAppDropsStaleEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name        string
		endpoints   map[string]string
		live        bool
		leaked      bool
		wantErr     bool
		wantStuck   bool
		wantDropped bool
	}{
		{name: "container gone", endpoints: map[string]string{"c1": "app-web-1"}, wantDropped: true},
		{name: "container still there", endpoints: map[string]string{"c1": "app-web-1"}, live: true, wantErr: true},
		{name: "endpoint count leaked", leaked: true, wantStuck: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &staleEngine{endpoints: tc.endpoints, live: map[string]bool{"c1": tc.live}, leaked: tc.leaked}
			if eng.endpoints == nil {
				eng.endpoints = map[string]string{}
			}
			srv := httptest.NewServer(eng)
			t.Cleanup(srv.Close)
			cli, err := client.New(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithAPIVersion("1.41"))
			if err != nil {
				t.Fatal(err)
			}
			stuck, err := newResourceEnsurer(cli).removeApp(context.Background(), "app", false)
			if (err != nil) != tc.wantErr {
				t.Fatalf("removeApp: err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(err.Error(), "active endpoints") {
				t.Fatalf("error does not say why: %v", err)
			}
			if (len(stuck) > 0) != tc.wantStuck {
				t.Fatalf("stuck %v, want some: %v", stuck, tc.wantStuck)
			}
			eng.mu.Lock()
			defer eng.mu.Unlock()
			if want := !tc.wantErr && !tc.wantStuck; eng.removed != want {
				t.Fatalf("network removed = %v, want %v", eng.removed, want)
			}
			if dropped := len(eng.disconnect) > 0; dropped != tc.wantDropped {
				t.Fatalf("forced disconnects %v, want some: %v", eng.disconnect, tc.wantDropped)
			}
		})
	}
}

// leakyEngine has one network, app_front on another subnet, whose
// endpoint count the engine leaked: no container, and its removal refused.
// It takes creates of networks of the same name, as engines before API
// 1.44 do.
type leakyEngine struct {
	mu      sync.Mutex
	nets    []map[string]any
	creates []map[string]any
}

func (e *leakyEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	path, reply := engineCall(w, r)
	switch {
	case r.Method == http.MethodGet && path == "/networks":
		reply(200, e.nets)
	case r.Method == http.MethodGet && path == "/networks/leaked":
		reply(200, map[string]any{"Name": "app_front", "Id": "leaked", "Containers": map[string]any{}})
	case r.Method == http.MethodDelete && path == "/networks/leaked":
		reply(403, map[string]string{"message": "error while removing network: network app_front id leaked has active endpoints"})
	case r.Method == http.MethodPost && path == "/networks/create":
		var req map[string]any
		_ = json.NewDecoder(r.Body).Decode(&req)
		e.creates = append(e.creates, req)
		ipam, _ := req["IPAM"].(map[string]any)
		e.nets = append(e.nets, map[string]any{"Name": req["Name"], "Id": "remade", "IPAM": ipam, "Labels": req["Labels"], "Created": "2026-12-02T14:00:00Z"})
		reply(201, map[string]string{"Id": "remade"})
	default:
		reply(404, map[string]string{"message": "unexpected " + r.Method + " " + path})
	}
}

// TestNetworkRemadeBesideALeakedOne: a network of the name on another
// subnet that the engine cannot remove (its endpoint count leaked) does not
// stop the task: the network is made on the slice under a name of its own
// (two networks of one name would leave the engine unable to start the
// container), and found under it next time.
func TestNetworkRemadeBesideALeakedOne(t *testing.T) {
	eng := &leakyEngine{nets: []map[string]any{{
		"Name": "app_front", "Id": "leaked", "Created": "2026-12-01T10:00:00Z",
		"IPAM":   map[string]any{"Config": []map[string]string{{"Subnet": "172.30.0.0/16"}}},
		"Labels": map[string]string{LabelApp: "app"}, // berth's own, for app (resources.go foreignNetwork)
	}}}
	srv := httptest.NewServer(eng)
	t.Cleanup(srv.Close)
	cli, err := client.New(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithAPIVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	s := driver.Slice{Subnet: netip.MustParsePrefix("10.240.1.0/24"), Gateway: netip.MustParseAddr("10.240.1.1"), MTU: 1450}
	for range 2 { // the second time, found (a new ensurer: nothing cached)
		id, err := newResourceEnsurer(cli).network(context.Background(), "app", "app_front", nil, &s)
		if err != nil || id != "remade" {
			t.Fatalf("network = %q, %v; want the network made again on the slice", id, err)
		}
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	sliced := slicedName("app_front", s.Subnet)
	if len(eng.creates) != 1 || eng.creates[0]["Name"] != sliced {
		t.Fatalf("creates %v, want one, of %s", eng.creates, sliced)
	}
	// The stuck network holds bridgeName("app_front"): the new one must not ask for it.
	if opts, _ := eng.creates[0]["Options"].(map[string]any); opts[optBridgeName] != bridgeName(sliced) {
		t.Errorf("bridge option %v, want %s", opts[optBridgeName], bridgeName(sliced))
	}
}
