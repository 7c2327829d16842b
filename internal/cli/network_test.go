package cli

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/api"
)

// fakeNetworks serves the network and volume routes in front of a
// fakeManager: networks by name, a 409 naming the apps for an rm of one
// that apps declare, as the manager answers.
type fakeNetworks struct {
	f       *fakeManager
	mu      sync.Mutex
	nets    map[string]api.Network
	vols    []api.Volume
	created []api.NetworkCreate
}

func newFakeNetworks(t *testing.T) (*fakeNetworks, string) {
	f, _ := newFakeManager(t)
	fn := &fakeNetworks{f: f, nets: map[string]api.Network{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathNetworks, fn.list)
	mux.HandleFunc("POST "+api.PathNetworks, fn.create)
	mux.HandleFunc("GET "+api.PathNetwork, fn.get)
	mux.HandleFunc("DELETE "+api.PathNetwork, fn.remove)
	mux.HandleFunc("GET "+api.PathVolumes, func(w http.ResponseWriter, _ *http.Request) { f.reply(w, 200, fn.vols) })
	mux.HandleFunc("GET "+api.PathVolume, func(w http.ResponseWriter, r *http.Request) {
		for _, v := range fn.vols {
			if v.Name == r.PathValue("name") {
				f.reply(w, 200, v)
				return
			}
		}
		f.fail(w, 404, "no volume named "+r.PathValue("name"))
	})
	mux.HandleFunc("DELETE "+api.PathVolume, func(w http.ResponseWriter, r *http.Request) {
		for i, v := range fn.vols {
			switch {
			case v.Name != r.PathValue("name"):
				continue
			case len(v.Tasks) > 0:
				f.fail(w, 409, "volume "+v.Name+" is in use by task "+strings.Join(v.Tasks, ", ")+": stop them first (berth scale, or berth down without -v)")
				return
			}
			v.Removing = []string{"n1", "n2"}
			fn.vols[i] = v
			f.reply(w, 202, v)
			return
		}
		f.fail(w, 404, "volume "+r.PathValue("name")+": not found; berth volume ls lists them")
	})
	mux.Handle("/", f.handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return fn, srv.URL
}

func (fn *fakeNetworks) list(w http.ResponseWriter, _ *http.Request) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	out := []api.Network{}
	for _, name := range slices.Sorted(maps.Keys(fn.nets)) {
		out = append(out, fn.nets[name])
	}
	fn.f.reply(w, 200, out)
}

func (fn *fakeNetworks) create(w http.ResponseWriter, r *http.Request) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	var req api.NetworkCreate
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fn.f.fail(w, 400, err.Error())
		return
	}
	if _, ok := fn.nets[req.Name]; ok {
		fn.f.fail(w, 409, "network "+req.Name+" already exists")
		return
	}
	fn.created = append(fn.created, req)
	subnet := req.Subnet
	if subnet == "" {
		subnet = "10.240.0.0/18"
	}
	n := api.Network{Name: req.Name, Scope: api.ScopeCluster, Subnet: subnet, Internal: req.Internal, Labels: req.Labels}
	fn.nets[req.Name] = n
	fn.f.reply(w, 201, n)
}

func (fn *fakeNetworks) get(w http.ResponseWriter, r *http.Request) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	n, ok := fn.nets[r.PathValue("name")]
	if !ok {
		fn.f.fail(w, 404, `no network named "`+r.PathValue("name")+`"; berth network ls lists them`)
		return
	}
	fn.f.reply(w, 200, n)
}

func (fn *fakeNetworks) remove(w http.ResponseWriter, r *http.Request) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	n, ok := fn.nets[r.PathValue("name")]
	switch {
	case !ok:
		fn.f.fail(w, 404, "network "+r.PathValue("name")+": not found")
	case len(n.Apps) > 0:
		fn.f.fail(w, 409, "network "+n.Name+" is in use by app "+strings.Join(n.Apps, ", ")+": remove it from their Compose files (or run berth down) first")
	default:
		delete(fn.nets, n.Name)
		w.WriteHeader(http.StatusNoContent)
	}
}

// TestNetworkCommands: create sends the flags, ls lists app and cluster
// networks with their owners, inspect prints JSON, rm of a network in use
// fails with the manager's sentence and exit 1, and rm of a free one
// prints its name, as docker network rm does.
func TestNetworkCommands(t *testing.T) {
	fn, url := newFakeNetworks(t)
	fn.nets["web_default"] = api.Network{Name: "web_default", Scope: api.ScopeApp, App: "web", Subnet: "10.240.64.0/18",
		Slices: map[string]string{"n1": "10.240.65.0/24"}, Services: []string{"web/api"}}

	steps := []struct {
		args    []string
		code    int
		out     []string // lines (or parts) stdout must hold
		errText string   // part of stderr
	}{
		{args: []string{"network", "create", "--subnet", "10.100.0.0/16", "--internal", "--label", "team=a", "shared"}, code: 0,
			out: []string{"Created network shared (10.100.0.0/16); join it with external: true in a Compose file"}},
		{args: []string{"network", "create", "shared"}, code: 1, errText: "network shared already exists"},
		{args: []string{"network", "create", "--label", "novalue", "x"}, code: 1, errText: `invalid label "novalue"`},
		{args: []string{"network", "create"}, code: 1, errText: "accepts 1 arg"},
		{args: []string{"network", "ls"}, code: 0, out: []string{"NAME", "shared", "cluster,internal", "10.100.0.0/16", "web_default", "app", "web"}},
		{args: []string{"network", "inspect", "web_default"}, code: 0, out: []string{`"subnet": "10.240.64.0/18"`, `"n1": "10.240.65.0/24"`, `"web/api"`}},
		{args: []string{"network", "inspect", "nope"}, code: 1, errText: `no network named "nope"`},
	}
	for _, s := range steps {
		h := newHarness(t)
		if code := h.run(t, append(s.args, "--addr", url)...); code != s.code {
			t.Fatalf("%v: exit %d, want %d; stderr: %s", s.args, code, s.code, h.errOut)
		}
		for _, o := range s.out {
			if !strings.Contains(h.out.String(), o) {
				t.Errorf("%v: stdout lacks %q:\n%s", s.args, o, h.out)
			}
		}
		if s.errText != "" && !strings.Contains(h.errOut.String(), s.errText) {
			t.Errorf("%v: stderr %q lacks %q", s.args, h.errOut, s.errText)
		}
	}
	if len(fn.created) != 1 || !fn.created[0].Internal || fn.created[0].Labels["team"] != "a" || fn.created[0].Subnet != "10.100.0.0/16" {
		t.Errorf("create sent %+v", fn.created)
	}

	n := fn.nets["shared"]
	n.Apps = []string{"blog", "web"}
	fn.nets["shared"] = n
	h := newHarness(t)
	if code := h.run(t, "network", "rm", "shared", "--addr", url); code != 1 {
		t.Fatalf("rm of a network in use: exit %d, want 1", code)
	}
	if want := "network shared is in use by app blog, web"; !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr %q lacks %q", h.errOut, want)
	}
	n.Apps = nil
	fn.nets["shared"] = n
	h = newHarness(t)
	if code := h.run(t, "network", "rm", "shared", "--addr", url); code != 0 || h.out.String() != "shared\n" {
		t.Fatalf("rm: exit %d, stdout %q; stderr %s", code, h.out, h.errOut)
	}
	if _, ok := fn.nets["shared"]; ok {
		t.Error("rm left the network")
	}

	h = newHarness(t)
	if code := h.run(t, "network", "ls", "--json", "--addr", url); code != 0 {
		t.Fatalf("ls --json: exit %d", code)
	}
	var got []api.Network
	if err := json.Unmarshal([]byte(h.out.String()), &got); err != nil || len(got) != 1 || got[0].Name != "web_default" {
		t.Errorf("ls --json = %s (%v)", h.out, err)
	}
	h = newHarness(t)
	if code := h.run(t, "network", "ls", "-o", "yaml", "--addr", url); code != 0 || !strings.Contains(h.out.String(), "name: web_default") {
		t.Errorf("ls -o yaml: exit %d, stdout %q", code, h.out)
	}
}

// TestVolumeCommands: ls says which nodes hold each volume and how many
// tasks mount it; inspect prints each replica's node.
func TestVolumeCommands(t *testing.T) {
	fn, url := newFakeNetworks(t)
	fn.vols = []api.Volume{
		{Name: "shop_data", App: "shop", Key: "data", Driver: "local", Tasks: []string{"t1"},
			Replicas: []api.VolumeReplica{{Replica: "db.1", Node: "n1"}, {Replica: "db.2", Node: "n2"}}},
		{Name: "corp-logs", App: "shop", Key: "logs", Driver: "local", External: true},
	}
	h := newHarness(t)
	if code := h.run(t, "volume", "ls", "--addr", url); code != 0 {
		t.Fatalf("volume ls: exit %d: %s", code, h.errOut)
	}
	lines := strings.Split(strings.TrimSpace(h.out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		strings.Join(strings.Fields(lines[1]), " ") != "shop_data shop local n1,n2 1" ||
		strings.Join(strings.Fields(lines[2]), " ") != "corp-logs shop local,external - 0" {
		t.Errorf("volume ls:\n%s", h.out)
	}
	h = newHarness(t)
	if code := h.run(t, "volume", "inspect", "shop_data", "--addr", url); code != 0 || !strings.Contains(h.out.String(), `"replica": "db.2"`) {
		t.Errorf("volume inspect: exit %d:\n%s%s", code, h.out, h.errOut)
	}
	h = newHarness(t)
	if code := h.run(t, "volume", "inspect", "nope", "--addr", url); code != 1 || !strings.Contains(h.errOut.String(), "no volume named nope") {
		t.Errorf("volume inspect nope: exit %d: %s", code, h.errOut)
	}
}

// TestVolumeRm: rm prints each volume and the nodes yet to remove their
// copy; one a task mounts fails with the manager's sentence.
func TestVolumeRm(t *testing.T) {
	fn, url := newFakeNetworks(t)
	fn.vols = []api.Volume{
		{Name: "shop_data", App: "shop", Key: "data", Driver: "local", Tasks: []string{"shop-db-1"}},
		{Name: "shop_logs", App: "shop", Key: "logs", Driver: "local"},
	}
	h := newHarness(t)
	if code := h.run(t, "volume", "rm", "shop_logs", "--addr", url); code != 0 || h.out.String() != "shop_logs (removing on node n1, n2)\n" {
		t.Errorf("volume rm: exit %d, stdout %q, stderr %s", code, h.out, h.errOut)
	}
	h = newHarness(t)
	if code := h.run(t, "volume", "rm", "shop_data", "--addr", url); code != 1 || !strings.Contains(h.errOut.String(), "volume shop_data is in use by task shop-db-1") {
		t.Errorf("volume rm of a mounted volume: exit %d, stderr %s", code, h.errOut)
	}
}
