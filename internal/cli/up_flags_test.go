package cli

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// upFlagsHarness is newHarness whose web depends on api, as `up web` then
// deploys api too.
func upFlagsHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.loader.app.Services[0].DependsOn = []types.Dependency{{Service: "api", Condition: types.ConditionStarted, Required: true}}
	return h
}

// TestUpFlagsReachTheManager: each of up's Compose flags is sent as the
// submission's query (or, --scale, as the replicas submitted).
func TestUpFlagsReachTheManager(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		query    map[string]string // want: key -> value ("" absent)
		replicas map[string]int
	}{
		{"plain up sends nothing", nil, map[string]string{"services": "", "remove_orphans": "", "force_recreate": "", "stop_grace": ""}, nil},
		{"a service brings its dependencies", []string{"web"}, map[string]string{"services": "web,api"}, nil},
		{"--no-deps leaves them", []string{"web", "--no-deps"}, map[string]string{"services": "web"}, nil},
		{"a dependency alone", []string{"api"}, map[string]string{"services": "api"}, nil},
		{"--force-recreate", []string{"--force-recreate"}, map[string]string{"force_recreate": "true", "no_recreate": ""}, nil},
		{"--no-recreate", []string{"--no-recreate"}, map[string]string{"no_recreate": "true"}, nil},
		{"--remove-orphans", []string{"--remove-orphans"}, map[string]string{"remove_orphans": "true"}, nil},
		{"-t is the stop grace", []string{"-t", "7"}, map[string]string{"stop_grace": "7s"}, nil},
		{"--timeout 0 kills at once", []string{"--timeout", "0"}, map[string]string{"stop_grace": "1ns"}, nil},
		{"--scale overrides the file", []string{"--scale", "web=5", "--scale", "api=0"}, nil, map[string]int{"web": 5, "api": 0}},
		{"--wait and --wait-timeout SECONDS", []string{"--wait", "--wait-timeout", "90"}, nil, map[string]int{"web": 2}},
		{"--wait-timeout DURATION", []string{"--wait-timeout", "2m"}, nil, map[string]int{"web": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, url := newFakeManager(t)
			h := upFlagsHarness(t)
			if code := h.run(t, append([]string{"up", "-d", "--addr", url}, tt.args...)...); code != 0 {
				t.Fatalf("up %v: exit %d: %s", tt.args, code, h.errOut)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			for k, want := range tt.query {
				if got := f.submitQuery.Get(k); got != want {
					t.Errorf("query %s = %q, want %q", k, got, want)
				}
			}
			for svc, want := range tt.replicas {
				if got := f.apps["hello"].Service(svc).Replicas; got != want {
					t.Errorf("%s submitted with %d replicas, want %d", svc, got, want)
				}
			}
		})
	}
}

// TestUpFlagsRefused: flags that contradict each other or name nothing
// fail before anything is submitted, with a sentence naming the flag.
func TestUpFlagsRefused(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"nosuch"}, "app hello has no service nosuch; name one of web, api"},
		{[]string{"--exit-code-from", "nosuch"}, "has no service nosuch"},
		{[]string{"--scale", "web"}, `--scale "web": write SERVICE=N`},
		{[]string{"--scale", "web=-1"}, `--scale "web=-1": write SERVICE=N`},
		{[]string{"--scale", "db=2"}, "--scale db=2: app hello has no service db"},
		{[]string{"--force-recreate", "--no-recreate"}, "--force-recreate and --no-recreate cannot be used together"},
		{[]string{"--abort-on-container-exit", "-d"}, "stays attached; drop -d and --wait"},
		{[]string{"--exit-code-from", "web", "--wait"}, "stays attached"},
		{[]string{"--wait-timeout", "soon"}, "write SECONDS (300) or a duration (5m)"},
		{[]string{"--wait-timeout", "0"}, "--wait-timeout must be more than 0"},
		{[]string{"-t", "-3"}, "write a number of seconds, 0 or more, not \"-3\""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f, url := newFakeManager(t)
			h := upFlagsHarness(t)
			if code := h.run(t, append([]string{"up", "--addr", url}, tt.args...)...); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if !strings.Contains(h.errOut.String(), tt.want) {
				t.Errorf("stderr = %q, want %q", h.errOut, tt.want)
			}
			notSubmitted(t, f)
		})
	}
}

// TestUpOrphans: services the cluster runs that the file lacks are named
// in a warning (not with --remove-orphans); those of a profile not enabled
// are neither orphans nor removed: they travel as keep.
func TestUpOrphans(t *testing.T) {
	tests := []struct {
		args     []string
		warn     bool
		orphans  string
		keepSent string
	}{
		{nil, true, "", "debug"},
		{[]string{"--remove-orphans"}, false, "true", "debug"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"up"}, tt.args...), " "), func(t *testing.T) {
			f, url := newFakeManager(t)
			f.apps["hello"] = &types.App{Name: "hello", Version: 1, Services: []*types.Service{
				{Name: "web", Replicas: 2, Version: 1}, {Name: "old", Replicas: 1, Version: 1}, {Name: "debug", Replicas: 1, Version: 1},
			}}
			h := upFlagsHarness(t)
			h.loader.disabled = []string{"debug"}
			if code := h.run(t, append([]string{"up", "-d", "--addr", url}, tt.args...)...); code != 0 {
				t.Fatalf("exit %d: %s", code, h.errOut)
			}
			warning := "warning: found orphan services (old) for app hello: if you removed or renamed them in your Compose file, run berth up --remove-orphans to remove them\n"
			if got := strings.Contains(h.errOut.String(), warning); got != tt.warn {
				t.Errorf("stderr = %q; want the orphan warning: %v", h.errOut, tt.warn)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if got := f.submitQuery.Get("remove_orphans"); got != tt.orphans {
				t.Errorf("remove_orphans = %q, want %q", got, tt.orphans)
			}
			if got := f.submitQuery.Get("keep"); got != tt.keepSent {
				t.Errorf("keep = %q, want %q", got, tt.keepSent)
			}
		})
	}
}

// TestUpAbortOnContainerExit: attached, the replicas' output streams; the
// first container to exit ends up, the app's services are scaled to 0,
// and the exit code is that container's, or --exit-code-from's service's.
func TestUpAbortOnContainerExit(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"--abort-on-container-exit"}, 3},
		{[]string{"--exit-code-from", "api"}, 3},
		{[]string{"--exit-code-from", "web"}, 143}, // web was stopped by the abort
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f, url := newFakeManager(t)
			stop := 143
			f.stopCode = &stop
			f.exitCodes = map[string]int{"api": 3}
			f.output = map[string]string{"api": "api says goodbye\n", "web": "web serves\n"}
			f.startFor = func(s *types.Service) types.TaskState {
				if s.Name == "api" {
					return types.TaskFailed
				}
				return types.TaskRunning
			}
			h := upFlagsHarness(t)
			if code := h.run(t, append([]string{"up", "-t", "1", "--addr", url}, tt.args...)...); code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, h.errOut)
			}
			out := h.out.String()
			for _, want := range []string{"api-1  | api says goodbye", "web-1  | web serves", "hello-api-1 exited with code 3\nAborting on container exit...\n", "Container hello-web-1  Stopped"} {
				if !strings.Contains(out, want) {
					t.Errorf("stdout = %q, want %q", out, want)
				}
			}
			if got, want := f.life.seen(), []string{"stop web,api t=1"}; !slices.Equal(got, want) {
				t.Errorf("lifecycle calls %v, want %v", got, want)
			}
		})
	}
}

// TestUpAttachedRejected: attached, a replica its node rejects (it has
// no container to exit) ends up with the reason, rather than waiting on.
func TestUpAttachedRejected(t *testing.T) {
	f, url := newFakeManager(t)
	f.startFor = func(s *types.Service) types.TaskState {
		if s.Name == "api" {
			return types.TaskRejected
		}
		return types.TaskRunning
	}
	h := upFlagsHarness(t)
	if code := h.run(t, "up", "--abort-on-container-exit", "--addr", url); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, h.errOut)
	}
	if want := "replica hello-api-1 was rejected: "; !strings.Contains(h.errOut.String(), want) {
		t.Errorf("stderr = %q, want %q", h.errOut, want)
	}
}

// TestUpInterrupted: Ctrl-C while up follows the deploy says the deploy
// goes on and how to follow it (exit 130); during a build it cancels the
// build and submits nothing.
func TestUpInterrupted(t *testing.T) {
	t.Run("after submit", func(t *testing.T) {
		f, url := newFakeManager(t)
		f.startFor = func(*types.Service) types.TaskState { return types.TaskStarting }
		h := upFlagsHarness(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		go func() { // Ctrl-C once the app is in and up follows it
			for ctx.Err() == nil {
				f.mu.Lock()
				listed := f.apps["hello"] != nil && f.listings > 0
				f.mu.Unlock()
				if listed {
					cancel()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		if code := run(ctx, []string{"up", "--addr", url}, h.e); code != exitInterrupted {
			t.Fatalf("exit %d, want 130: %s", code, h.errOut)
		}
		if want := "the deploy of app hello goes on in the cluster; follow it with berth deployments or berth ps"; !strings.Contains(h.errOut.String(), want) {
			t.Errorf("stderr = %q, want %q", h.errOut, want)
		}
	})
	t.Run("during a build", func(t *testing.T) {
		f, url := newFakeManager(t)
		h := upFlagsHarness(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.images.onBuild = func(context.Context) error {
			cancel() // Ctrl-C while the image builds
			return errors.New("build interrupted")
		}
		if code := run(ctx, []string{"up", "--addr", url}, h.e); code != exitInterrupted {
			t.Fatalf("exit %d, want 130: %s", code, h.errOut)
		}
		if !strings.Contains(h.errOut.String(), "Build canceled; nothing was submitted") {
			t.Errorf("stderr = %q", h.errOut)
		}
		notSubmitted(t, f)
	})
}

// TestDownFlags: -t travels as the stop grace, --rmi removes this
// engine's images of the app (local: only those built without a name),
// --remove-orphans is accepted.
func TestDownFlags(t *testing.T) {
	tests := []struct {
		args    []string
		grace   string
		removed []string
	}{
		{nil, "", nil},
		{[]string{"-t", "5"}, "5s", nil},
		{[]string{"--rmi", "local", "--remove-orphans"}, "", []string{"hello-api"}},
		{[]string{"--rmi", "all", "--wait-timeout", "60"}, "", []string{"nginx", "hello-api"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f, url := newFakeManager(t)
			h := upFlagsHarness(t)
			if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
				t.Fatalf("up: exit %d: %s", code, h.errOut)
			}
			h.images.have["nginx"] = "sha256:nginx"
			if code := h.run(t, append([]string{"down", "--addr", url}, tt.args...)...); code != 0 {
				t.Fatalf("down: exit %d: %s", code, h.errOut)
			}
			f.mu.Lock()
			grace := f.deleteQuery.Get("stop_grace")
			f.mu.Unlock()
			if grace != tt.grace {
				t.Errorf("stop_grace = %q, want %q", grace, tt.grace)
			}
			if !slices.Equal(h.images.removed, tt.removed) {
				t.Errorf("removed images %v, want %v", h.images.removed, tt.removed)
			}
		})
	}
	t.Run("--rmi bogus", func(t *testing.T) {
		_, url := newFakeManager(t)
		h := upFlagsHarness(t)
		if code := h.run(t, "down", "--rmi", "some", "--addr", url); code != 1 || !strings.Contains(h.errOut.String(), "--rmi \"some\": write all") {
			t.Errorf("exit %d, stderr %q", code, h.errOut)
		}
	})
}

// notSubmitted fails t if the fake holds the app.
func notSubmitted(t *testing.T, f *fakeManager) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps["hello"] != nil {
		t.Error("the app was submitted")
	}
}

// TestUpDryRunTakesTheFlags: a dry run plans what up with the same flags
// would do.
func TestUpDryRunTakesTheFlags(t *testing.T) {
	f, url := newFakeManager(t)
	h := upFlagsHarness(t)
	if code := h.run(t, "up", "--dry-run", "web", "--no-deps", "--force-recreate", "--remove-orphans", "--scale", "web=3", "--addr", url); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.planQuery
	if q.Get("services") != "web" || q.Get("force_recreate") != "true" || q.Get("remove_orphans") != "true" {
		t.Errorf("plan query %v", q)
	}
	if f.apps["hello"] != nil {
		t.Error("a dry run submitted the app")
	}
}
