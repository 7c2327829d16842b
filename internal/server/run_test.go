package server

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestRunRequests: berth run's routes validate the request, naming the
// field, and make a one-off as compose run does.
func TestRunRequests(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	body := func(change func(*api.RunRequest)) string {
		req := api.RunRequest{App: validApp(), Service: "job"}
		change(&req)
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	const runs = "/v1/apps/shop/runs"
	long := strings.Repeat("x", api.MaxExecBytes+1)
	expectErrors(t, s, []errorCase{ // api_test.go
		{"no app", "POST", runs, `{"service": "job"}`, 400, "app"},
		{"app name mismatch", "POST", runs, body(func(r *api.RunRequest) { r.App.Name = "other" }), 400, "app.name"},
		{"no service", "POST", runs, body(func(r *api.RunRequest) { r.Service = "" }), 400, "service"},
		{"unknown service", "POST", runs, body(func(r *api.RunRequest) { r.Service = "nope" }), 400, "service"},
		{"a submitted one-off", "POST", runs, body(func(r *api.RunRequest) { r.App.Services[0].OneOff = &types.OneOff{Of: "x"} }), 400, "app.services[0].one_off"},
		{"env not K=V", "POST", runs, body(func(r *api.RunRequest) { r.Env = []string{"A=1", "B"} }), 400, "env[1]"},
		{"bad publish", "POST", runs, body(func(r *api.RunRequest) { r.Publish = []string{"80:0"} }), 400, "publish[0]"},
		{"bad name", "POST", runs, body(func(r *api.RunRequest) { r.Name = "no/slash" }), 400, "name"},
		{"relative workdir", "POST", runs, body(func(r *api.RunRequest) { r.WorkDir = "tmp" }), 400, "workdir"},
		{"too many arguments", "POST", runs, body(func(r *api.RunRequest) { r.Command = make([]string, api.MaxExecArgs+1) }), 400, "command"},
		{"too many bytes", "POST", runs, body(func(r *api.RunRequest) { r.Command = []string{long} }), 400, "command"},
		{"name taken", "POST", runs, body(func(r *api.RunRequest) { r.Name = "web" }), 409, "name"},
		{"a one-off's flag in up", "PUT", "/v1/apps/shop", func() string {
			app := validApp()
			app.Services[1].OneOff = &types.OneOff{Of: "web"}
			b, _ := json.Marshal(app)
			return string(b)
		}(), 400, "services[1].one_off"},
		{"remove from an unknown app", "DELETE", runs + "/x", ``, 404, ""},
	})

	// job depends on web: web starts with the run, as up job would.
	res, err := c.Run(ctx, "shop", api.RunRequest{App: validApp(), Service: "job", Command: []string{"/bin/echo", "hi"}, Env: []string{"A=1"}, Publish: []string{"9000:90/udp"}})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^job-run-[0-9a-f]{12}$`).MatchString(res.Service) {
		t.Fatalf("one-off named %q, want job-run-HEX", res.Service)
	}
	app, err := c.GetApp(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	one := app.Service(res.Service)
	switch {
	case app.Service("web") == nil:
		t.Fatal("the run did not start job's dependency web")
	case app.Service("job") != nil:
		t.Fatal("the run started job itself, not only a one-off of it")
	case one == nil || one.OneOff == nil || one.OneOff.Of != "job":
		t.Fatalf("one-off %+v", one)
	case one.Replicas != 1 || one.RestartPolicy.Condition != types.RestartNone:
		t.Fatalf("one-off: %d replicas, restart %q; want 1, none", one.Replicas, one.RestartPolicy.Condition)
	case !slices.Equal(one.Command, []string{"/bin/echo", "hi"}) || one.Env["A"] != "1":
		t.Fatalf("one-off command %v, env %v", one.Command, one.Env)
	case len(one.Ports) != 1 || one.Ports[0] != (types.Port{Target: 90, Published: 9000, Protocol: "udp"}):
		t.Fatalf("one-off ports %+v, want only -p's", one.Ports)
	}
	if res, err := c.Run(ctx, "shop", api.RunRequest{App: validApp(), Service: "web", NoDeps: true}); err != nil {
		t.Fatal(err)
	} else if web := mustApp(t, c).Service(res.Service); len(web.Ports) != 0 || web.Networks[0].Aliases != nil {
		t.Fatalf("a one-off of web publishes %+v (aliases %v); want none without -p or --service-ports", web.Ports, web.Networks[0].Aliases)
	}

	// up, even with --remove-orphans, keeps the one-offs.
	file := validApp()
	file.Services = file.Services[:1]
	if _, err := c.SubmitAppWith(ctx, file, api.SubmitOptions{RemoveOrphans: true}); err != nil {
		t.Fatal(err)
	}
	if mustApp(t, c).Service(res.Service) == nil {
		t.Fatal("up --remove-orphans removed a one-off")
	}

	expectErrors(t, s, []errorCase{
		{"port taken", "POST", runs, body(func(r *api.RunRequest) { r.Service, r.ServicePorts = "web", true }), 409, "publish"},
		{"remove a service of the file", "DELETE", runs + "/web", ``, 400, "service"},
		{"scale a one-off", "POST", "/v1/apps/shop/services/" + res.Service + "/scale", `{"replicas": 3}`, 400, "service"},
		{"remove an unknown one-off", "DELETE", runs + "/nope", ``, 404, ""},
	})
	// No agent: its task is pending, never placed, so it goes at once.
	rr, err := c.RemoveRun(ctx, "shop", res.Service)
	if err != nil || !rr.Removed {
		t.Fatalf("remove run: %+v, %v", rr, err)
	}
	if mustApp(t, c).Service(res.Service) != nil {
		t.Fatal("the one-off is still in the app")
	}
}

func mustApp(t *testing.T, c *api.Client) *types.App {
	t.Helper()
	app, err := c.GetApp(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	return app
}
