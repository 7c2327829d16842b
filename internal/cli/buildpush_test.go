package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestBuildPullPush(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		pullFails  []string
		wantCode   int
		wantBuilds []string
		wantPulls  []string
		wantPushes []string
		wantErr    string
	}{
		{name: "build builds what has a build section", args: []string{"build"}, wantBuilds: []string{"hello-api"}},
		{name: "build of a service without one builds nothing", args: []string{"build", "web"}},
		{name: "build of an unknown service", args: []string{"build", "nope"}, wantCode: 1,
			wantErr: "app hello has no service nope; its Compose file has web, api, cache, dev, pinned, tool"},
		{name: "pull skips built, never-pulled and exec services", args: []string{"pull"}, wantPulls: []string{"nginx", "redis:7", "myapp:dev"}},
		{name: "pull of one service", args: []string{"pull", "cache"}, wantPulls: []string{"redis:7"}},
		{name: "a failed pull fails", args: []string{"pull"}, pullFails: []string{"redis:7"}, wantCode: 1, wantPulls: []string{"nginx"},
			wantErr: "service cache: pull redis:7: manifest unknown"},
		{name: "a failed pull is a warning with --ignore-pull-failures", args: []string{"pull", "--ignore-pull-failures"}, pullFails: []string{"redis:7"},
			wantPulls: []string{"nginx", "myapp:dev"}, wantErr: "warning: service cache: pull redis:7: manifest unknown"},
		{name: "push sends built and local-only images to the cluster", args: []string{"push"},
			wantPushes: []string{"hello-api -> hello/api", "myapp:dev -> hello/dev"}},
		{name: "push of a pulled image has nothing to do", args: []string{"push", "cache"}, wantErr: "Nothing to push"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := newFakeManager(t)
			h := shipHarness(t)
			h.images.have["hello-api"] = "sha256:built-hello-api" // built before
			h.images.pullFails = map[string]bool{}
			for _, r := range tc.pullFails {
				h.images.pullFails[r] = true
			}
			code := h.run(t, append(tc.args, "--addr", url)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d: %s", code, tc.wantCode, h.errOut)
			}
			if tc.wantErr != "" && !strings.Contains(h.errOut.String(), tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, h.errOut)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"builds", h.images.builds, tc.wantBuilds}, {"pulls", h.images.pulls, tc.wantPulls}, {"pushes", h.images.pusher.pushes, tc.wantPushes}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestBuildFlags(t *testing.T) {
	h := newHarness(t)
	if code := h.run(t, "build", "--no-cache", "--pull", "-q", "api"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.errOut)
	}
	if len(h.images.buildOpts) != 1 || !h.images.buildOpts[0].NoCache || !h.images.buildOpts[0].Pull {
		t.Errorf("build options %+v, want --no-cache and --pull passed on", h.images.buildOpts)
	}
	if strings.Contains(h.errOut.String(), "Building") {
		t.Errorf("-q printed progress: %s", h.errOut)
	}
}

// A push without a build first says to build.
func TestPushNeedsABuild(t *testing.T) {
	_, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "push", "--addr", url); code != 1 || !strings.Contains(h.errOut.String(), "no image built yet for api: run berth build first") {
		t.Errorf("exit %d: %s", code, h.errOut)
	}
}
