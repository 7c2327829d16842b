package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// fakeLifecycle is the fake manager's side of the lifecycle verbs: what it
// was asked, and what top answers.
type fakeLifecycle struct {
	mu    sync.Mutex
	calls []string // "stop web t=2", "kill <id> TERM", ...
}

func (l *fakeLifecycle) record(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *fakeLifecycle) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func (f *fakeManager) lifecycleRoutes(mux *http.ServeMux) {
	f.life = &fakeLifecycle{}
	for verb, route := range map[string]string{"stop": api.PathAppStop, "start": api.PathAppStart, "restart": api.PathAppRestart, "rm": api.PathAppRm} {
		mux.HandleFunc("POST "+route, func(w http.ResponseWriter, r *http.Request) { f.lifecycleVerb(w, r, verb) })
	}
	for verb, route := range map[string]string{"kill": api.PathTaskKill, "pause": api.PathTaskPause, "unpause": api.PathTaskUnpause} {
		mux.HandleFunc("POST "+route, func(w http.ResponseWriter, r *http.Request) {
			var req api.KillRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			f.life.record(strings.TrimSpace(verb + " " + r.PathValue("id") + " " + req.Signal))
			w.WriteHeader(http.StatusNoContent)
		})
	}
	mux.HandleFunc("GET "+api.PathTaskTop, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reply(w, 200, api.Processes{Titles: []string{"UID", "PID", "CMD"}, Processes: [][]string{{"root", "42", "/app " + r.PathValue("id")}}})
	})
}

// lifecycleVerb acts as the manager and its agents would, at once: stop
// asks the tasks to stop (listTasks then stops them), rm drops the stopped.
func (f *fakeManager) lifecycleVerb(w http.ResponseWriter, r *http.Request, verb string) {
	var req api.LifecycleRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.fail(w, 400, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	app := f.apps[r.PathValue("name")]
	if app == nil {
		f.fail(w, 404, "no app")
		return
	}
	for i, s := range req.Services {
		if app.Service(s) == nil {
			f.fail(w, 400, fmt.Sprintf("services[%d]: app %s has no service %q", i, app.Name, s))
			return
		}
	}
	call := verb + " " + strings.Join(req.Services, ",")
	if req.TimeoutSeconds != nil {
		call += fmt.Sprintf(" t=%d", *req.TimeoutSeconds)
	}
	f.life.record(call)
	in := func(t *types.Task) bool { return len(req.Services) == 0 || slices.Contains(req.Services, t.Service) }
	var removed []string
	switch verb {
	case "stop":
		for _, t := range f.tasks {
			if in(t) {
				t.DesiredState = types.DesiredShutdown
			}
		}
	case "rm":
		f.tasks = slices.DeleteFunc(f.tasks, func(t *types.Task) bool {
			gone := in(t) && t.DesiredState == types.DesiredShutdown && t.State.Terminal()
			if gone {
				removed = append(removed, t.Name())
			}
			return gone
		})
		f.index++
		f.reply(w, 200, api.RemoveResponse{Removed: removed})
		return
	}
	f.index++
	names := req.Services
	if len(names) == 0 {
		for _, s := range app.Services {
			names = append(names, s.Name)
		}
	}
	f.reply(w, 200, api.LifecycleResponse{Services: names})
}

func TestLifecycleVerbs(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		calls  []string // recorded by the fake, in order (prefixes)
		outHas []string
		errHas string
	}{
		{name: "stop one with -t", args: []string{"stop", "web", "-t", "2"}, calls: []string{"stop web t=2"},
			outHas: []string{"Container hello-web-1  Stopped\n", "Container hello-web-2  Stopped\n"}},
		{name: "stop all", args: []string{"stop"}, calls: []string{"stop "}, outHas: []string{"hello-api-1  Stopped"}},
		{name: "stop unknown service", args: []string{"stop", "nope"}, code: 1, errHas: `app hello has no service "nope"`},
		{name: "start", args: []string{"start", "web", "--wait=false"}, calls: []string{"start web"}},
		{name: "restart -t", args: []string{"restart", "-t", "0", "--wait=false"}, calls: []string{"restart  t=0"}},
		{name: "kill -s TERM", args: []string{"kill", "-s", "TERM", "web"}, calls: []string{"kill ", "kill "},
			outHas: []string{"Container hello-web-1  Killed\n", "Container hello-web-2  Killed\n"}},
		{name: "kill default SIGKILL", args: []string{"kill", "api"}, calls: []string{"kill "}, outHas: []string{"hello-api-1  Killed"}},
		{name: "kill unknown service", args: []string{"kill", "nope"}, code: 1, errHas: "app hello has no service nope"},
		{name: "pause", args: []string{"pause", "api"}, calls: []string{"pause "}, outHas: []string{"hello-api-1  Paused"}},
		{name: "unpause", args: []string{"unpause", "api"}, calls: []string{"unpause "}, outHas: []string{"hello-api-1  Unpaused"}},
		{name: "top", args: []string{"top", "api"}, outHas: []string{"hello-api-1\nUID    PID   CMD\nroot   42    /app "}},
		{name: "rm asks, no", args: []string{"rm", "-s", "web"}, stdin: "n\n", calls: []string{"stop web"},
			outHas: []string{"Going to remove hello-web-1, hello-web-2\n? Are you sure? (y/N)"}},
		{name: "rm asks, yes", args: []string{"rm", "-s", "web"}, stdin: "y\n", calls: []string{"stop web", "rm web"},
			outHas: []string{"Container hello-web-1  Removed\n"}},
		{name: "rm -f, nothing stopped", args: []string{"rm", "-f"}, outHas: []string{"No stopped containers\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, url := newFakeManager(t)
			up := newHarness(t)
			if code := up.run(t, "up", "-d", "--addr", url); code != 0 {
				t.Fatalf("up: exit %d: %s", code, up.errOut)
			}
			h := newHarness(t)
			h.e.stdin = strings.NewReader(c.stdin)
			if code := h.run(t, append(c.args, "--addr", url)...); code != c.code {
				t.Fatalf("exit %d, want %d: %s", code, c.code, h.errOut)
			}
			got := f.life.seen()
			for i, want := range c.calls {
				if i >= len(got) || !strings.HasPrefix(got[i], want) {
					t.Fatalf("calls %q, want %q", got, c.calls)
				}
			}
			if len(got) != len(c.calls) && c.code == 0 {
				t.Fatalf("calls %q, want %q", got, c.calls)
			}
			if c.name == "kill -s TERM" && !strings.HasSuffix(got[0], " TERM") {
				t.Errorf("kill sent %q, want signal TERM", got[0])
			}
			if c.name == "kill default SIGKILL" && !strings.HasSuffix(got[0], " SIGKILL") {
				t.Errorf("kill sent %q, want SIGKILL", got[0])
			}
			for _, s := range c.outHas {
				if !strings.Contains(h.out.String(), s) {
					t.Errorf("stdout %q lacks %q", h.out, s)
				}
			}
			if !strings.Contains(h.errOut.String(), c.errHas) {
				t.Errorf("stderr %q lacks %q", h.errOut, c.errHas)
			}
		})
	}
}

// TestWaitExitCode: wait prints each task's exit code as it stops and
// exits with the last one's; --down-project then removes the app.
func TestWaitExitCode(t *testing.T) {
	f, url := newFakeManager(t)
	up := newHarness(t)
	if code := up.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, up.errOut)
	}
	f.mu.Lock()
	for _, tk := range f.tasks {
		if tk.Service == "api" {
			tk.State, tk.ExitCode = types.TaskFailed, ptrTo(3)
		}
	}
	f.mu.Unlock()
	h := newHarness(t)
	if code := h.run(t, "wait", "api", "--addr", url); code != 3 {
		t.Fatalf("wait api: exit %d, want 3: %s", code, h.errOut)
	}
	if got := h.out.String(); got != "hello-api-1 exited with code 3\n" {
		t.Fatalf("stdout %q", got)
	}
	if code := h.run(t, "wait", "nope", "--addr", url); code != 1 || !strings.Contains(h.errOut.String(), "no service nope") {
		t.Fatalf("wait nope: exit %d: %s", code, h.errOut)
	}
	h = newHarness(t)
	if code := h.run(t, "wait", "api", "--down-project", "--addr", url); code != 3 {
		t.Fatalf("wait api --down-project: exit %d, want 3: %s", code, h.errOut)
	}
	if got := h.out.String(); got != "hello-api-1 exited with code 3\nRemoving app hello\n" {
		t.Fatalf("stdout %q", got)
	}
	f.mu.Lock()
	_, deleting := f.deleted["hello"]
	f.mu.Unlock()
	if !deleting {
		t.Fatal("--down-project did not remove the app")
	}
}

func ptrTo[T any](v T) *T { return &v }
