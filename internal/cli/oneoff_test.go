package cli

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
)

// run answers berth run: -d gets a one-off; any other run is refused
// once recorded, so a test reads the request without a task to attach to.
func (f *fakeManager) run(w http.ResponseWriter, r *http.Request) {
	var req api.RunRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	f.mu.Lock()
	f.runs = append(f.runs, req)
	f.mu.Unlock()
	if req.Interactive || req.TTY {
		f.fail(w, http.StatusBadRequest, "fake: a detached run keeps no stdin")
		return
	}
	f.reply(w, http.StatusCreated, api.RunResponse{Service: req.Service + "-run-0123456789ab", App: req.App})
}

// TestRunFlags: berth's flags come before SERVICE, everything after it is
// the command, and after the verb -p publishes (the project is -p before
// the verb, or --project-name), as in docker compose run.
func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want api.RunRequest // App left out
		out  string
	}{
		{name: "the command is everything after SERVICE", args: []string{"run", "-d", "web", "sh", "-c", "echo -p 1 --rm"},
			want: api.RunRequest{Service: "web", Command: []string{"sh", "-c", "echo -p 1 --rm"}}, out: "hello-web-run-0123456789ab-1\n"},
		{name: "-p publishes", args: []string{"run", "-d", "-p", "8080:80", "--publish", "127.0.0.1::53/udp", "web"},
			want: api.RunRequest{Service: "web", Publish: []string{"8080:80", "127.0.0.1::53/udp"}}},
		{name: "-p before the verb is the project", args: []string{"-p", "other", "run", "-d", "-p", "9000:90", "web"},
			want: api.RunRequest{Service: "web", Publish: []string{"9000:90"}}, out: "other-web-run-0123456789ab-1\n"},
		{name: "--project-name after the verb", args: []string{"run", "--project-name", "other", "-d", "web"},
			want: api.RunRequest{Service: "web"}, out: "other-web-run-0123456789ab-1\n"},
		{name: "every flag", args: []string{"run", "-d", "--no-deps", "--service-ports", "--name", "job", "-e", "A=1", "-u", "1:2", "-w", "/w",
			"--entrypoint", "/bin/sh -c", "-T", "web", "echo", "hi"},
			want: api.RunRequest{Service: "web", Name: "job", Command: []string{"echo", "hi"}, Entrypoint: []string{"/bin/sh", "-c"}, Env: []string{"A=1"},
				User: "1:2", WorkDir: "/w", ServicePorts: true, NoDeps: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, url := newFakeManager(t)
			h := newHarness(t)
			if code := h.run(t, append([]string{"--addr", url}, tc.args...)...); code != 0 {
				t.Fatalf("exit %d: %s", code, h.errOut)
			}
			if len(f.runs) != 1 {
				t.Fatalf("%d run requests, want 1", len(f.runs))
			}
			got := f.runs[0]
			if got.App == nil || got.App.Service("web") == nil {
				t.Fatalf("the request carries no app with web: %+v", got.App)
			}
			wantApp := "hello"
			if strings.Contains(tc.out, "other-") {
				wantApp = "other"
			}
			if got.App.Name != wantApp {
				t.Errorf("app %q, want %q", got.App.Name, wantApp)
			}
			got.App = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("request\n%+v, want\n%+v", got, tc.want)
			}
			if tc.out != "" && h.out.String() != tc.out {
				t.Errorf("stdout %q, want %q", h.out.String(), tc.out)
			}
		})
	}
}

// TestRunRefuses: mistakes fail before anything is built or submitted.
func TestRunRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "requires at least 1 arg"},
		{[]string{"run", "nope"}, "has no service nope"},
		{[]string{"run", "-p", "80:x", "web"}, `-p "80:x": target port`},
		{[]string{"run", "-p", "1:2:3:4", "web"}, "is not [[HOST_IP:]PUBLISHED:]TARGET"},
		{[]string{"run", "--rm", "-d", "web"}, "--rm and -d cannot be used together"},
		{[]string{"run", "--entrypoint", "'sh", "web"}, "--entrypoint"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f, url := newFakeManager(t)
			h := newHarness(t)
			if code := h.run(t, append([]string{"--addr", url}, tc.args...)...); code == 0 || !strings.Contains(h.errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want an error with %q", code, h.errOut, tc.want)
			}
			if len(f.runs) != 0 {
				t.Errorf("a run was submitted: %+v", f.runs)
			}
		})
	}
}
