package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestConfigReportsEveryTypo: a file with three typos gets all three at
// once, in the same order on every run (compose-go named one, and which
// one changed from run to run). It needs no cluster.
func TestConfigReportsEveryTypo(t *testing.T) {
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
services:
  web:
    imgae: nginx
    deplyo:
      replicas: 2
  db:
    image: postgres
    enviroment:
      POSTGRES_PASSWORD: example
`)
	var first string
	for i := range 5 {
		r := h.RunCLI(t, berthBin, dir, dir, nil, "config", "-q", "-f", file)
		if r.Code == 0 {
			t.Fatalf("config accepted three typos:\n%s", r)
		}
		if i == 0 {
			first = r.Stderr
			for _, key := range []string{"services.db.enviroment", "services.web.deplyo", "services.web.imgae"} {
				if !strings.Contains(first, key) {
					t.Errorf("config does not name %s:\n%s", key, first)
				}
			}
			continue
		}
		if r.Stderr != first {
			t.Fatalf("run %d reported otherwise:\n%s\nfirst run:\n%s", i, r.Stderr, first)
		}
	}
}

// TestConfigRefusesWhatUpRefuses: a depends_on cycle and a missing build
// context fail config, as they fail up.
func TestConfigRefusesWhatUpRefuses(t *testing.T) {
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
services:
  api:
    build: ./api
    depends_on: [worker]
  worker:
    image: worker
    depends_on: [api]
`)
	r := h.RunCLI(t, berthBin, dir, dir, nil, "config", "-q", "-f", file)
	if r.Code == 0 || !strings.Contains(r.Stderr, "services.api.build.context") {
		t.Fatalf("config accepted a missing build context:\n%s", r)
	}
	h.WriteFile(t, dir, "api/Dockerfile", "FROM scratch\n")
	r = h.RunCLI(t, berthBin, dir, dir, nil, "config", "-q", "-f", file)
	if r.Code == 0 || !strings.Contains(r.Stderr, "dependency cycle: [api worker api]") {
		t.Fatalf("config accepted a dependency cycle:\n%s", r)
	}
}

// TestConstraintTypo: a placement constraint the scheduler cannot read is
// refused at once, naming it: by up before anything is sent, and by the
// manager with a 400 for a client that sends it anyway (it used to be
// accepted, and its tasks left pending with the reason).
func TestConstraintTypo(t *testing.T) {
	c := h.StartCluster(t, berthBin)
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
services:
  web:
    x-berth-driver: exec
    command: ["sleep", "600"]
    deploy:
      placement:
        constraints: ["node.lables.zone == a"]
`)
	r := c.Run(t, dir, "up", "-p", "e2e-typo", "-f", file, "--wait-timeout", "1m")
	if r.Code == 0 || !strings.Contains(r.Stderr, "services.web.deploy.placement.constraints[0]") ||
		!strings.Contains(r.Stderr, `unknown attribute "node.lables.zone"`) {
		t.Fatalf("up did not refuse the constraint typo by name:\n%s", r)
	}
	app := &types.App{Name: "e2e-typo", Services: []*types.Service{{
		Name: "web", Driver: types.DriverExec, Command: []string{"sleep", "600"}, Replicas: 1,
		Placement: types.Placement{Constraints: []string{"node.lables.zone==a"}},
	}}}
	_, err := c.Client().SubmitApp(context.Background(), app)
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest ||
		!strings.Contains(apiErr.Message, "services.web.placement.constraints[0]") {
		t.Fatalf("submit with a constraint typo: %v, want a 400 naming services.web.placement.constraints[0]", err)
	}
}
