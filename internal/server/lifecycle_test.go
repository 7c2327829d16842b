package server

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/api"
)

// TestLifecycleRequests: the lifecycle routes validate their body and
// answer 4xx naming the field; a valid stop is stored with the app.
func TestLifecycleRequests(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	if _, err := c.SubmitApp(ctx, validApp()); err != nil {
		t.Fatal(err)
	}
	expectErrors(t, s, []errorCase{ // api_test.go
		{"unknown service", "POST", "/v1/apps/shop/stop", `{"services": ["web", "nope"]}`, 400, "services[1]"},
		{"service twice", "POST", "/v1/apps/shop/stop", `{"services": ["web", "web"]}`, 400, "services[1]"},
		{"negative timeout", "POST", "/v1/apps/shop/stop", `{"timeout_seconds": -1}`, 400, "timeout_seconds"},
		{"huge timeout", "POST", "/v1/apps/shop/restart", `{"timeout_seconds": 99999}`, 400, "timeout_seconds"},
		{"start takes no timeout", "POST", "/v1/apps/shop/start", `{"timeout_seconds": 3}`, 400, "timeout_seconds"},
		{"rm takes no timeout", "POST", "/v1/apps/shop/rm", `{"timeout_seconds": 3}`, 400, "timeout_seconds"},
		{"unknown field", "POST", "/v1/apps/shop/stop", `{"grace": 3}`, 400, "grace"},
		{"unknown app", "POST", "/v1/apps/nope/stop", `{}`, 404, ""},
		{"bad signal", "POST", "/v1/tasks/x/kill", `{"signal": "SIGNOPE"}`, 400, "signal"},
		{"signal out of range", "POST", "/v1/tasks/x/kill", `{"signal": "99"}`, 400, "signal"},
		{"kill of an unknown task", "POST", "/v1/tasks/x/kill", `{"signal": "TERM"}`, 404, ""},
		{"top of an unknown task", "GET", "/v1/tasks/x/top", ``, 404, ""},
	})

	two := 2
	res, err := c.StopServices(ctx, "shop", api.LifecycleRequest{Services: []string{"web"}, TimeoutSeconds: &two})
	if err != nil || len(res.Services) != 1 || res.Services[0] != "web" {
		t.Fatalf("stop web: %+v, %v", res, err)
	}
	app, err := c.GetApp(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if l := app.Service("web").Lifecycle; l == nil || !l.Stopped || l.Grace.Seconds() != 2 {
		t.Fatalf("web's lifecycle after stop -t 2: %+v", l)
	}
	if app.Service("job").IsStopped() {
		t.Fatal("stop web stopped job too")
	}
	if res, err := c.StartServices(ctx, "shop", api.LifecycleRequest{}); err != nil || len(res.Services) != 2 {
		t.Fatalf("start: %+v, %v; want both services named", res, err)
	}
	if app, _ := c.GetApp(ctx, "shop"); app.Service("web").IsStopped() {
		t.Fatal("web still stopped after start")
	}
}
