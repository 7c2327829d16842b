package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestDeploymentsThroughAPI: a submission makes a deployment per changed
// service, listed by GET /v1/deployments in the API's own form; a rollback
// of a new service is refused with a reason, one of a changed service puts
// the previous spec back as a new version.
func TestDeploymentsThroughAPI(t *testing.T) {
	_, c := startServer(t)
	ctx := context.Background()
	if _, err := c.SubmitApp(ctx, validApp()); err != nil {
		t.Fatal(err)
	}
	ds, meta, err := c.ListDeployments(ctx, api.DeploymentQuery{App: "shop"})
	if err != nil || len(ds) != 2 || meta.Index == 0 {
		t.Fatalf("deployments: %v (index %d) %v", ds, meta.Index, err)
	}
	web := ds[1]
	if web.ID != "shop/web/1" || web.State != api.DeploymentRunning || web.Total != 2 || web.Parallelism != 1 ||
		web.Order != types.OrderStopFirst || web.FailureAction != types.FailurePause || web.Monitor != types.DefaultMonitor {
		t.Fatalf("web's deployment: %+v", web)
	}
	_, err = c.RollbackService(ctx, "shop", "web")
	if err == nil || !strings.Contains(err.Error(), "no previous version") {
		t.Fatalf("rollback of a new service: %v", err)
	}
	if _, err := c.RollbackService(ctx, "shop", "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("rollback of an unknown service: %v", err)
	}
	app := validApp()
	app.Services[0].Image = "web:2"
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	d, err := c.RollbackService(ctx, "shop", "web")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != "shop/web/3" || !d.Rollback || d.FromVersion != 2 {
		t.Fatalf("rollback deployment: %+v", d)
	}
	got, err := c.GetApp(ctx, "shop")
	if err != nil || got.Service("web").Image != "web:1" || got.Service("web").Version != 3 {
		t.Fatalf("after rollback: %+v %v", got, err)
	}
	if _, err := c.PromoteService(ctx, "shop", "web"); err == nil || !strings.Contains(err.Error(), "no canaries") {
		t.Fatalf("promote without canaries: %v", err)
	}
	app.Services[0].Image = "web:4"
	app.Services[0].Canary = &types.Canary{Count: 1}
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if d, err := c.PromoteService(ctx, "shop", "web"); err != nil || !d.Promoted || d.Canaries != 1 || d.ToVersion != 4 {
		t.Fatalf("promote: %+v %v", d, err)
	}
	if _, _, err := c.ListDeployments(ctx, api.DeploymentQuery{Service: "web"}); err == nil || !strings.Contains(err.Error(), "service") {
		t.Fatalf("a service without its app was accepted: %v", err)
	}
}

// TestPlanChangesNothing: a dry run names each differing field and the
// tasks it would start and stop, and commits nothing.
func TestPlanChangesNothing(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	if _, err := c.SubmitApp(ctx, validApp()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the job's task", func() bool {
		ts, _, err := c.ListTasks(ctx, api.TaskQuery{App: "shop", Service: "job"})
		return err == nil && len(ts) == 1
	})
	app := validApp()
	app.Services[0].Image = "web:2"
	app.Services[0].Env = map[string]string{"A": "1"}
	app.Services[1].Replicas = 3
	app.Secrets["key"] = &types.Secret{Name: "key", Data: []byte("n3w")}
	app.Services = append(app.Services, &types.Service{Name: "cache", Image: "redis", Replicas: 1})
	p, err := c.PlanApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.ServicePlan{}
	for _, sp := range p.Services {
		got[sp.Name] = sp
	}
	if web := got["web"]; web.Action != api.PlanUpdate || strings.Join(web.Fields, ",") != "env,image,secret key" || web.FromVersion != 1 || web.ToVersion != 2 {
		t.Errorf("web: %+v", web)
	}
	if job := got["job"]; job.Action != api.PlanScale || job.Start != 2 {
		t.Errorf("job: %+v", job)
	}
	if cache := got["cache"]; cache.Action != api.PlanCreate || cache.Start != 1 {
		t.Errorf("cache: %+v", cache)
	}
	for _, id := range []string{"shop/web/2", "shop/cache/1"} {
		if d := s.store.View().Deployment(id); d != nil {
			t.Fatalf("the dry run made deployment %s", id)
		}
	}
	if got, _ := c.GetApp(ctx, "shop"); got.Service("web").Image != "web:1" || got.Service("cache") != nil {
		t.Fatalf("the dry run changed the app: %+v", got.Services)
	}
	bad := validApp()
	bad.Services[0].UpdateConfig = &types.UpdateConfig{Order: "sideways"}
	if _, err := c.PlanApp(ctx, bad); err == nil || !strings.Contains(err.Error(), "services.web.update_config.order") {
		t.Fatalf("a bad app was planned: %v", err)
	}
}

// TestEventsThroughAPI: index 0 answers at once with what is kept; a later
// index waits for the next event.
func TestEventsThroughAPI(t *testing.T) {
	_, c := startServer(t)
	ctx := context.Background()
	if _, err := c.SubmitApp(ctx, validApp()); err != nil {
		t.Fatal(err)
	}
	r, err := c.Events(ctx, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range r.Events {
		found = found || (e.Kind == "deployment" && e.ID == "shop/web/1" && e.Action == "created")
	}
	if !found || r.Index == 0 || r.Gap != nil {
		t.Fatalf("events: %+v", r)
	}
	got := make(chan *api.EventsResponse, 1)
	go func() {
		for {
			next, err := c.Events(ctx, r.Index, 30*time.Second)
			if err != nil {
				t.Error(err)
				got <- nil
				return
			}
			for _, e := range next.Events {
				if e.Kind == "deployment" && e.ID == "shop/web/2" {
					got <- next
					return
				}
			}
			r = next
		}
	}()
	app := validApp()
	app.Services[0].Image = "web:2"
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	select {
	case next := <-got:
		if next == nil {
			t.Fatal("events failed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event for the new deployment")
	}
}
