package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestUpFollowsDeployments: up's outcome is the deployments', whatever the
// verdicts say (the fake judges every replica up).
func TestUpFollowsDeployments(t *testing.T) {
	cases := []struct {
		state, code, reason string
		exit                int
	}{
		{api.DeploymentSucceeded, "", "", 0},
		{api.DeploymentPaused, types.ReasonFailureRatio, "1 of 2 replicas of version 1 failed", 1},
		{api.DeploymentFailed, types.ReasonReplicas, "1 of 2 replicas of version 1 failed: replica hello-web-2 exited with code 3", 1},
		{api.DeploymentRolledBack, types.ReasonFailureRatio, "2 of 2 replicas failed; rolled back to version 1", 1},
	}
	for _, tc := range cases {
		t.Run(tc.state, func(t *testing.T) {
			f, url := newFakeManager(t)
			f.deployments = func(app *types.App) []*api.Deployment {
				var out []*api.Deployment
				for _, s := range app.Services {
					d := &api.Deployment{ID: types.DeploymentID(app.Name, s.Name, s.Version), App: app.Name, Service: s.Name,
						ToVersion: s.Version, State: api.DeploymentSucceeded}
					if s.Name == "web" {
						d.State, d.ReasonCode, d.Reason = tc.state, tc.code, tc.reason
					}
					out = append(out, d)
				}
				return out
			}
			h := newHarness(t)
			code := h.run(t, "up", "--addr", url)
			if code != tc.exit {
				t.Fatalf("up: exit %d, want %d: %s", code, tc.exit, h.errOut)
			}
			if tc.exit != 0 && (!strings.Contains(h.errOut.String(), "service web: its deployment to version 1") ||
				!strings.Contains(h.errOut.String(), "("+tc.code+"): "+tc.reason)) {
				t.Errorf("stderr = %q, want the deployment's reason", h.errOut)
			}
		})
	}
}

func TestDeploymentsCommand(t *testing.T) {
	f, url := newFakeManager(t)
	f.deployments = func(app *types.App) []*api.Deployment {
		return []*api.Deployment{{ID: "hello/web/2", App: "hello", Service: "web", FromVersion: 1, ToVersion: 2,
			State: api.DeploymentPaused, Updated: 1, Healthy: 0, Total: 2, Failed: 1,
			ReasonCode: types.ReasonFailureRatio, Reason: "1 of 2 replicas of version 2 failed"}}
	}
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	h = newHarness(t)
	if code := h.run(t, "deployments", "--addr", url); code != 0 {
		t.Fatalf("deployments: exit %d: %s", code, h.errOut)
	}
	for _, want := range []string{"SERVICE", "1 -> 2", "paused", "1/2 updated, 0 up, 1 failed", "failure_ratio: 1 of 2 replicas of version 2 failed"} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, h.out)
		}
	}
}

// TestWithDeployments: the deployment decides while it runs and when it
// stops short; once it succeeded the verdict (judged on today's replica
// count, after a scale) does.
func TestWithDeployments(t *testing.T) {
	followed := &types.App{Name: "a", Services: []*types.Service{{Name: "web", Version: 2}}}
	cases := []struct {
		name        string
		state       string
		verdictDone bool
		wantDone    bool
		wantFailure string
	}{
		{"running, verdict up", api.DeploymentRunning, true, false, ""},
		{"succeeded, verdict up", api.DeploymentSucceeded, true, true, ""},
		{"succeeded, replicas added since", api.DeploymentSucceeded, false, false, ""},
		{"paused", api.DeploymentPaused, true, false, "its deployment to version 2 was paused (failure_ratio): why"},
		{"superseded", api.DeploymentSuperseded, true, false, "its deployment to version 2 was superseded (failure_ratio): why"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := progress{Services: []serviceProgress{{Name: "web", Want: 2, Ready: 2, Done: tc.verdictDone}}}
			d := &api.Deployment{ID: "a/web/2", FromVersion: 1, ToVersion: 2, State: tc.state, ReasonCode: types.ReasonFailureRatio, Reason: "why"}
			got := withDeployments(p, followed, []*api.Deployment{d, {ID: "a/web/1", State: api.DeploymentSucceeded}})
			sp := got.Services[0]
			if sp.Done != tc.wantDone || sp.Failure != tc.wantFailure {
				t.Fatalf("done %v failure %q, want %v %q", sp.Done, sp.Failure, tc.wantDone, tc.wantFailure)
			}
			if (tc.wantFailure != "") != (got.State == deployFailed) {
				t.Errorf("overall state %v", got.State)
			}
		})
	}
}

// TestWithDeploymentsWaitsForTheRollback: a deployment rolled back by
// itself fails up only once the rollback it started has ended, and the
// failure says how the rollback went.
func TestWithDeploymentsWaitsForTheRollback(t *testing.T) {
	followed := &types.App{Name: "a", Services: []*types.Service{{Name: "web", Version: 2}}}
	failed := &api.Deployment{ID: "a/web/2", Service: "web", FromVersion: 1, ToVersion: 2, State: api.DeploymentRolledBack,
		ReasonCode: types.ReasonFailureRatio, Reason: "2 of 2 replicas failed; rolled back to version 1"}
	cases := []struct {
		name        string
		rollback    *api.Deployment
		wantFailure string // "": still on its way
		wantRollout string
	}{
		{"no rollback record (an older manager)", nil, "its deployment to version 2 was rolled back", ""},
		{"rollback running", &api.Deployment{ID: "a/web/3", Service: "web", FromVersion: 2, ToVersion: 3, Rollback: true,
			State: api.DeploymentRunning, Updated: 1, Total: 2, Healthy: 1}, "", "rolling back to version 1: 1/2 updated, 1 up"},
		{"rollback succeeded", &api.Deployment{ID: "a/web/3", Service: "web", FromVersion: 2, ToVersion: 3, Rollback: true,
			State: api.DeploymentSucceeded}, "the rollback (version 3) succeeded and the previous spec serves again", ""},
		{"rollback paused", &api.Deployment{ID: "a/web/3", Service: "web", FromVersion: 2, ToVersion: 3, Rollback: true,
			State: api.DeploymentPaused, ReasonCode: types.ReasonFailureRatio, Reason: "1 of 2 failed"},
			"the rollback (version 3) was paused too (failure_ratio): 1 of 2 failed; see berth inspect web", ""},
		{"a later deployment, not the rollback", &api.Deployment{ID: "a/web/3", Service: "web", FromVersion: 2, ToVersion: 3,
			State: api.DeploymentRunning}, "its deployment to version 2 was rolled back", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := progress{Services: []serviceProgress{{Name: "web", Want: 2, Ready: 2, Done: true}}}
			deps := []*api.Deployment{failed}
			if tc.rollback != nil {
				deps = append(deps, tc.rollback)
			}
			got := withDeployments(p, followed, deps)
			sp := got.Services[0]
			if sp.Done {
				t.Fatal("done after a rollback; want up to fail")
			}
			if tc.wantFailure == "" {
				if sp.Failure != "" || got.State == deployFailed || sp.Rollout != tc.wantRollout {
					t.Fatalf("failure %q state %v rollout %q; want it still on its way, %q", sp.Failure, got.State, sp.Rollout, tc.wantRollout)
				}
				return
			}
			if !strings.Contains(sp.Failure, tc.wantFailure) || got.State != deployFailed {
				t.Fatalf("failure %q state %v; want it to fail with %q", sp.Failure, got.State, tc.wantFailure)
			}
		})
	}
}

func TestRollbackCommand(t *testing.T) {
	_, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	h = newHarness(t)
	if code := h.run(t, "rollback", "web", "-d", "--addr", url); code != 0 {
		t.Fatalf("rollback: exit %d: %s", code, h.errOut)
	}
	if want := "Rolling web back: version 2 puts back the spec it replaced (deployment hello/web/2)"; !strings.Contains(h.out.String(), want) {
		t.Errorf("stdout = %q, want %q", h.out, want)
	}
	h = newHarness(t)
	if code := h.run(t, "rollback", "nope", "--addr", url); code == 0 || !strings.Contains(h.errOut.String(), "app hello has no service nope") {
		t.Errorf("rollback of an unknown service: exit %d: %s", code, h.errOut)
	}
}

func TestDeployPromoteCommand(t *testing.T) {
	_, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	h = newHarness(t)
	if code := h.run(t, "deploy", "promote", "web", "-d", "--addr", url); code != 0 {
		t.Fatalf("deploy promote: exit %d: %s", code, h.errOut)
	}
	if want := "Promoted the canaries of web version 1"; !strings.Contains(h.out.String(), want) {
		t.Errorf("stdout = %q, want %q", h.out, want)
	}
}

// TestUpDryRun: the plan is printed (or its JSON), nothing is submitted,
// built or pushed, and a built service keeps the image the cluster has.
func TestUpDryRun(t *testing.T) {
	f, url := newFakeManager(t)
	h := newHarness(t)
	if code := h.run(t, "up", "--dry-run", "--addr", url); code != 0 {
		t.Fatalf("up --dry-run: exit %d: %s", code, h.errOut)
	}
	if !strings.Contains(h.out.String(), "Plan for app hello (a dry run: nothing was changed)") ||
		!strings.Contains(h.out.String(), "web  create; starts 2 tasks") {
		t.Errorf("stdout = %q", h.out)
	}
	if len(f.apps) != 0 || len(h.images.builds) != 0 {
		t.Fatalf("a dry run submitted %d apps and built %v", len(f.apps), h.images.builds)
	}
	h = newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	f.mu.Lock()
	f.apps["hello"].Service("web").Image = "old"
	f.mu.Unlock()
	h = newHarness(t)
	if code := h.run(t, "up", "--dry-run", "--json", "--addr", url); code != 0 {
		t.Fatalf("up --dry-run --json: exit %d: %s", code, h.errOut)
	}
	var p api.Plan
	if err := json.Unmarshal([]byte(h.out.String()), &p); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, h.out)
	}
	for _, s := range p.Services {
		want := map[string]string{"web": api.PlanUpdate, "api": api.PlanUnchanged}[s.Name]
		if s.Action != want {
			t.Errorf("%s: %s, want %s (an unbuilt api keeps its image)", s.Name, s.Action, want)
		}
	}
}

// TestInspectShowsDeploymentAndFailure: inspect shows the current
// deployment and, for a failed service, what explains it.
func TestInspectShowsDeploymentAndFailure(t *testing.T) {
	f, url := newFakeManager(t)
	f.startFor = func(s *types.Service) types.TaskState {
		if s.Name == "web" {
			return types.TaskRejected
		}
		return types.TaskRunning
	}
	f.healthOutput = "curl: (7) connection refused"
	for i := 1; i <= 10; i++ {
		f.logs[fmt.Sprintf("t%d", i)] = "starting\nfatal: no config\n"
	}
	f.deployments = func(app *types.App) []*api.Deployment {
		return []*api.Deployment{{ID: "hello/web/1", App: "hello", Service: "web", ToVersion: 1, State: api.DeploymentPaused,
			Updated: 2, Total: 2, Failed: 2, ReasonCode: types.ReasonFailureRatio, Reason: "2 of 2 replicas of version 1 failed"}}
	}
	h := newHarness(t)
	if code := h.run(t, "up", "-d", "--addr", url); code != 0 {
		t.Fatalf("up: exit %d: %s", code, h.errOut)
	}
	h = newHarness(t)
	if code := h.run(t, "inspect", "web", "--addr", url); code != 0 {
		t.Fatalf("inspect: exit %d: %s", code, h.errOut)
	}
	for _, want := range []string{
		"Service web of app hello, version 1",
		"verdict:     failed: replica hello-web-1 was rejected",
		"deployment:  1 (new) paused, 2/2 updated, 0 up, 2 failed",
		"failure_ratio: 2 of 2 replicas of version 1 failed",
		"hello-web-1  version 1  rejected",
		"last health check output:\n  curl: (7) connection refused",
		"last log lines of hello-web-1:\n  starting\n  fatal: no config",
	} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, h.out)
		}
	}
	h = newHarness(t)
	if code := h.run(t, "inspect", "nope", "--addr", url); code == 0 || !strings.Contains(h.errOut.String(), "app hello has no service nope") {
		t.Errorf("inspect of an unknown service: exit %d: %s", code, h.errOut)
	}
}

func TestEventsCommand(t *testing.T) {
	f, url := newFakeManager(t)
	f.eventLog = []api.Event{
		{Index: 10, Kind: "deployment", Action: "updated", ID: "hello/web/2", State: "running", Detail: "1/2 updated, 0 up"},
		{Index: 12, Kind: "task", Action: "updated", ID: "t1", Name: "hello-web-1", State: "running", Detail: "version 2, desired running"},
	}
	h := newHarness(t)
	if code := h.run(t, "events", "--since", "5", "--addr", url); code != 0 {
		t.Fatalf("events: exit %d: %s", code, h.errOut)
	}
	for _, want := range []string{"10      deployment  hello/web/2  updated  running  1/2 updated, 0 up", "12      task        hello-web-1  updated  running"} {
		if !strings.Contains(h.out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, h.out)
		}
	}
	if !strings.Contains(h.errOut.String(), "indexes 6 to 9 are not on this manager") {
		t.Errorf("stderr = %q, want the gap 6-9", h.errOut)
	}
	h = newHarness(t)
	if code := h.run(t, "events", "--since", "10", "--json", "--addr", url); code != 0 {
		t.Fatalf("events --json: exit %d: %s", code, h.errOut)
	}
	var ev api.Event
	if err := json.Unmarshal([]byte(h.out.String()), &ev); err != nil || ev.Index != 12 {
		t.Errorf("json: %v %+v from %q", err, ev, h.out)
	}
}

// TestWithTaskDetail: a failure decided by the deployment before the
// verdict carries the newest failing task's probe output and name.
func TestWithTaskDetail(t *testing.T) {
	tasks := []*types.Task{
		{ID: "t1", App: "a", Service: "db", Slot: 1, CreateIndex: 5, State: types.TaskShutdown, HealthOutput: "old probe"},
		{ID: "t2", App: "a", Service: "db", Slot: 1, CreateIndex: 9, State: types.TaskRunning, HealthOutput: "db-probe-says-no"},
		{ID: "t3", App: "a", Service: "web", Slot: 1, CreateIndex: 12, State: types.TaskFailed, HealthOutput: "not db"},
	}
	got := withTaskDetail(&serviceProgress{Name: "db"}, tasks)
	if got.Verdict == nil || got.Verdict.HealthOutput != "db-probe-says-no" || got.Verdict.TaskID != "t2" {
		t.Fatalf("verdict %+v, want t2's probe output", got.Verdict)
	}
	full := &serviceProgress{Name: "db", Verdict: &types.ServiceStatus{TaskID: "t1", HealthOutput: "the verdict's"}}
	if got := withTaskDetail(full, tasks); got.Verdict.HealthOutput != "the verdict's" {
		t.Errorf("a verdict with its own output was changed: %+v", got.Verdict)
	}
}
