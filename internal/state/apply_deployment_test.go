package state

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

func deploymentStates(v *View, app, service string) []string {
	var out []string
	for _, d := range v.Deployments(app, service) {
		out = append(out, d.ID+"="+string(d.State))
	}
	return out
}

func TestDeploymentRecordedWithUpsert(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0, Deploy: true})
	v := h.store.View()
	if got := strings.Join(deploymentStates(v, "web", ""), " "); got != "web/api/1=running web/db/1=running" {
		t.Fatalf("after the first up: %s", got)
	}
	d := v.CurrentDeployment("web", "api", 1)
	if d.FromVersion != 0 || d.Previous != nil || d.Total != 2 || *d.Config.Parallelism != 1 || d.Config.Order != types.OrderStopFirst ||
		d.Config.Monitor != types.DefaultMonitor || d.Config.FailureAction != types.FailurePause || d.CreateIndex != 1 {
		t.Fatalf("first deployment: %+v", d)
	}
	// Only api changes: one deployment, from 1 to 2, the old spec kept;
	// the live one of version 1 is superseded.
	app := testApp()
	app.Services[0].Image = "api:2"
	h.mustApply(UpsertApp{App: app, Now: t0.Add(time.Minute), Deploy: true})
	v = h.store.View()
	if got := strings.Join(deploymentStates(v, "web", ""), " "); got != "web/api/1=superseded web/api/2=running web/db/1=running" {
		t.Fatalf("after a change of api: %s", got)
	}
	d = v.CurrentDeployment("web", "api", 2)
	if d.FromVersion != 1 || d.Previous == nil || d.Previous.Image != "api:1" || d.Previous.Version != 1 {
		t.Fatalf("update deployment: %+v", d)
	}
	// Only update_config changes: no rollout, the new config stored.
	app.Services[0].UpdateConfig = &types.UpdateConfig{Order: types.OrderStartFirst}
	res := h.mustApply(UpsertApp{App: app, Now: t0.Add(2 * time.Minute), Deploy: true}).(*UpsertResult)
	if len(res.Changed) != 0 || len(h.store.View().Deployments("web", "api")) != 2 {
		t.Fatalf("an update_config change rolled the service: %+v", res)
	}
	// A removed service's deployments go with it; a purge drops the rest.
	app.Services = app.Services[:1]
	h.mustApply(UpsertApp{App: app, Now: t0.Add(3 * time.Minute), Deploy: true})
	if got := deploymentStates(h.store.View(), "web", "db"); len(got) != 0 {
		t.Fatalf("removed service kept %v", got)
	}
	h.mustApply(DeleteApp{Name: "web"})
	h.mustApply(PurgeApp{Name: "web"})
	if got := deploymentStates(h.store.View(), "", ""); len(got) != 0 {
		t.Fatalf("purged app kept %v", got)
	}
}

// An entry from before deployments (no Deploy) replays as it applied then.
func TestOldUpsertMakesNoDeployment(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	if got := deploymentStates(h.store.View(), "", ""); len(got) != 0 {
		t.Fatalf("an old entry made deployments %v", got)
	}
}

func TestSetDeployment(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0, Deploy: true})
	id := types.DeploymentID("web", "api", 1)
	h.mustApply(SetDeployment{ID: id, State: types.DeploymentPaused, Updated: 1, Total: 2, Failed: 1,
		ReasonCode: types.ReasonFailureRatio, Reason: "1 of 2 failed", Now: t0})
	d := h.store.View().Deployment(id)
	if d.State != types.DeploymentPaused || d.Updated != 1 || d.Failed != 1 || d.ReasonCode != types.ReasonFailureRatio || d.ModifyIndex != 2 {
		t.Fatalf("after SetDeployment: %+v", d)
	}
	// up again, unchanged: the paused deployment resumes.
	h.mustApply(UpsertApp{App: testApp(), Now: t0.Add(time.Minute), Deploy: true})
	d = h.store.View().Deployment(id)
	if d.State != types.DeploymentRunning || d.Reason != "" || !d.ResumedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after up again: %+v", d)
	}
	h.mustApply(SetDeployment{ID: id, State: types.DeploymentSucceeded, Updated: 2, Healthy: 2, Total: 2, Now: t0})
	// Final: later reports (a stale leader's) change nothing.
	h.mustApply(SetDeployment{ID: id, State: types.DeploymentRunning, Now: t0})
	if d := h.store.View().Deployment(id); d.State != types.DeploymentSucceeded {
		t.Fatalf("a final deployment moved: %+v", d)
	}
	if _, err := h.apply(SetDeployment{ID: types.DeploymentID("web", "db", 1), State: types.DeploymentRolledBack}); err == nil {
		t.Fatal("SetDeployment took rolled_back, which only RollbackService sets")
	}
}

func TestRollbackService(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0, Deploy: true})
	h.mustApply(UpsertNode{Node: testNode("n1")})
	old1, old2 := testTask("t1", "api", 1), testTask("t2", "api", 2)
	h.mustApply(TaskUpdates{Create: []*types.Task{old1, old2}, Now: t0})
	if _, err := h.apply(RollbackService{ID: types.DeploymentID("web", "api", 1)}); err == nil {
		t.Fatal("a new service was rolled back")
	}
	app := testApp()
	app.Services[0].Image = "api:2"
	app.Services[0].RollbackConfig = &types.UpdateConfig{Parallelism: ptr(0)}
	h.mustApply(UpsertApp{App: app, Now: t0, Deploy: true})
	// Slot 1 was replaced (t1 stopped, t3 of version 2); slot 2 still runs t2.
	t3 := testTask("t3", "api", 1)
	t3.ServiceVersion = 2
	h.mustApply(TaskUpdates{Create: []*types.Task{t3}, Desired: map[string]types.TaskState{"t1": types.DesiredShutdown}, Now: t0})
	res := h.mustApply(RollbackService{ID: types.DeploymentID("web", "api", 2), ReasonCode: types.ReasonFailureRatio, Reason: "it failed", Now: t0}).(*types.Deployment)
	v := h.store.View()
	svc := v.App("web").Service("api")
	if svc.Version != 3 || svc.Image != "api:1" || svc.Replicas != 2 || svc.SpecHash != v.CurrentDeployment("web", "api", 2).Previous.SpecHash {
		t.Fatalf("rolled back service: version %d image %s replicas %d", svc.Version, svc.Image, svc.Replicas)
	}
	if !res.Rollback || res.FromVersion != 2 || res.ToVersion != 3 || res.Config.Step(2) != 2 || res.Previous.Image != "api:2" {
		t.Fatalf("rollback deployment: %+v", res)
	}
	if d := v.CurrentDeployment("web", "api", 2); d.State != types.DeploymentRolledBack || d.Reason != "it failed" {
		t.Fatalf("rolled back deployment: %+v", d)
	}
	// t2 (wanted, version 1) is kept as version 3; t1 (stopped) and t3 are not.
	for id, want := range map[string]uint64{"t1": 1, "t2": 3, "t3": 2} {
		if got := v.Task(id).ServiceVersion; got != want {
			t.Errorf("task %s: version %d, want %d", id, got, want)
		}
	}
	if _, err := h.apply(RollbackService{ID: types.DeploymentID("web", "api", 2)}); err == nil {
		t.Fatal("a deployment no longer current was rolled back twice")
	}
}

func TestDeploymentHistoryBounded(t *testing.T) {
	h := newHarness(t)
	app := testApp()
	for i := range deploymentsPerService + 5 {
		app.Services[1].Env = map[string]string{"N": strings.Repeat("x", i+1)}
		h.mustApply(UpsertApp{App: app, Now: t0, Deploy: true})
	}
	ds := h.store.View().Deployments("web", "db")
	if len(ds) != deploymentsPerService || ds[len(ds)-1].ToVersion != deploymentsPerService+5 {
		t.Fatalf("kept %d deployments of db, the last of version %d", len(ds), ds[len(ds)-1].ToVersion)
	}
}

func TestPromoteDeployment(t *testing.T) {
	h := newHarness(t)
	app := testApp()
	app.Services[0].Canary = &types.Canary{Count: 1}
	h.mustApply(UpsertApp{App: app, Now: t0, Deploy: true})
	if d := h.store.View().CurrentDeployment("web", "api", 1); d.Canary != nil {
		t.Fatalf("a new service got canaries: %+v", d.Canary)
	}
	if _, err := h.apply(PromoteDeployment{ID: "web/api/1"}); err == nil || !strings.Contains(err.Error(), "no canaries") {
		t.Fatalf("promote without canaries: %v", err)
	}
	app.Services[0].Image = "api:2"
	h.mustApply(UpsertApp{App: app, Now: t0, Deploy: true})
	id := types.DeploymentID("web", "api", 2)
	h.mustApply(SetDeployment{ID: id, State: types.DeploymentPaused, ReasonCode: types.ReasonPromotion, Reason: "waiting", Now: t0})
	d := h.mustApply(PromoteDeployment{ID: id, Now: t0}).(*types.Deployment)
	if !d.Promoted || d.State != types.DeploymentRunning || d.Reason != "" || d.Canary.Count != 1 {
		t.Fatalf("promoted: %+v", d)
	}
	// A controller's report from before the promotion does not undo it.
	h.mustApply(SetDeployment{ID: id, State: types.DeploymentRunning, Now: t0})
	if d := h.store.View().Deployment(id); !d.Promoted {
		t.Fatalf("the promotion was taken back: %+v", d)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0, Deploy: true})
	before := dump(t, h.store.View())
	app := testApp()
	app.Services[0].Image = "api:2"
	res, err := h.store.DryRun(UpsertApp{App: app, Now: t0, Deploy: true})
	if err != nil {
		t.Fatal(err)
	}
	if up := res.(*UpsertResult); strings.Join(up.Changed, ",") != "api" || up.App.Service("api").Version != 2 {
		t.Fatalf("dry run result: %+v", up)
	}
	if after := dump(t, h.store.View()); after != before {
		t.Fatalf("the dry run changed the store:\n%s\n%s", before, after)
	}
}
