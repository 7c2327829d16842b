package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// TestDrainWithNowhereToGoKeepsServing drains the only node of a dev
// cluster under a replica with a published port and a named volume: no
// other node can take it, so the old container keeps running and its port
// keeps answering, while ps shows the replacement pending and why. Activating
// the node again drops the replacement; the same container still serves.
func TestDrainWithNowhereToGoKeepsServing(t *testing.T) {
	h.RequireDocker(t)
	const project = "e2e-drain"
	img := h.TestImage(t)
	h.CleanupDocker(t, project) // registered first: runs after the server stops
	c := h.StartCluster(t, berthBin)
	port := strconv.Itoa(h.FreePort(t))
	dir := t.TempDir()
	file := h.WriteFile(t, dir, "compose.yaml", `
services:
  web:
    image: `+img+`
    ports: ["127.0.0.1:`+port+`:8080"]
    volumes: ["data:/data"]
volumes:
  data: {}
`)
	c.MustRun(t, dir, "up", "-p", project, "-f", file, "--wait-timeout", "3m")
	url := "http://127.0.0.1:" + port + "/"
	h.HTTPGet(t, url, time.Minute)
	tasks, err := c.PS(t, project)
	if err != nil {
		t.Fatal(err)
	}
	old := h.Running(tasks, "web")
	if len(old) != 1 {
		t.Fatalf("want one running web: %s", h.Describe(tasks))
	}
	node := onlyNode(t, c, dir)

	c.MustRun(t, dir, "node", "drain", node)
	h.WaitFor(t, time.Minute, "the replacement pending, saying why", func() error {
		tasks, err := c.PS(t, project)
		if err != nil {
			return err
		}
		for _, tk := range tasks {
			if tk.State == types.TaskPending && tk.DesiredState == types.DesiredRunning && strings.Contains(tk.PendingReason, "drained") {
				return nil
			}
		}
		return fmt.Errorf("no replacement pending on the drain: %s", h.Describe(tasks))
	})
	assertServing(t, c, project, old[0].ID, url)
	ps := c.MustRun(t, dir, "ps", "-p", project).Stdout
	for _, want := range []string{"pending: volume data of web.1 is on node " + node + ", which is drained", "berth service unpin web.1", "PINNED TO NODE"} {
		if !strings.Contains(ps, want) {
			t.Errorf("berth ps does not say %q:\n%s", want, ps)
		}
	}

	c.MustRun(t, dir, "node", "activate", node)
	h.WaitFor(t, time.Minute, "the replacement dropped", c.ExpectRunning(t, project, "web", 1))
	assertServing(t, c, project, old[0].ID, url)
	c.MustRun(t, dir, "down", "-v", "--wait-timeout", "2m", "-p", project)
}

// assertServing checks that task id is still the running, wanted replica
// and that the published port answers.
func assertServing(t *testing.T, c *h.Cluster, project, id, url string) {
	t.Helper()
	tasks, err := c.PS(t, project)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if tk.ID == id && (tk.State != types.TaskRunning || tk.DesiredState != types.DesiredRunning) {
			t.Fatalf("the old replica is %s/%s with nowhere else to go, want running: %s", tk.State, tk.DesiredState, h.Describe(tasks))
		}
	}
	if code, body := h.HTTPStatus(url); code != 200 {
		t.Fatalf("the published port stopped answering: %d %s", code, body)
	}
}

func onlyNode(t *testing.T, c *h.Cluster, dir string) string {
	t.Helper()
	var nodes []*types.Node
	if err := json.Unmarshal([]byte(c.MustRun(t, dir, "node", "ls", "--json").Stdout), &nodes); err != nil || len(nodes) != 1 {
		t.Fatalf("node ls: %v %v", nodes, err)
	}
	return nodes[0].Name
}
