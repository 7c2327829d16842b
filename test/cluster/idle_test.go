package cluster

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"

	"github.com/berth-dev/berth/test/cluster/harness"
)

// nodeTasksRoute is the agents' blocking query, as the managers' metrics
// name it.
const nodeTasksRoute = `route="GET /v1/nodes/{id}/tasks"`

// TestIdleAgentsBlock counts, on a new cluster with no app, the agents'
// task queries over a few seconds (from every manager's /metrics): a
// blocking query waits, so an idle agent asks about once per wait, not
// thousands of times a second.
func TestIdleAgentsBlock(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b", "c")})
	c.Leader(t, 10*time.Second)
	before := nodeTaskQueries(t, c)
	const window = 3 * time.Second
	time.Sleep(window) // the measurement is a count over a fixed window
	n := nodeTaskQueries(t, c) - before
	rate := float64(n) / window.Seconds() / float64(len(c.Agents))
	t.Logf("idle cluster: %d task queries by %d agents in %s (%.2f per agent per second)", n, len(c.Agents), window, rate)
	if n > 3*len(c.Agents) {
		t.Fatalf("%d task queries in %s by %d idle agents, want a few blocking ones", n, window, len(c.Agents))
	}
}

// nodeTaskQueries sums the agents' task queries every live manager served.
func nodeTaskQueries(t *testing.T, c *harness.Cluster) int {
	t.Helper()
	total := 0
	for _, m := range c.Live() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+"/metrics", nil)
		req.Header.Set(api.HeaderAuthorization, "Bearer "+m.Token()) // metrics need a credential as the API does
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("metrics of %s: %v", m.Name, err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "berth_api_request_seconds_count{") || !strings.Contains(line, nodeTasksRoute) {
				continue
			}
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metrics of %s: %q: %v", m.Name, line, err)
			}
			total += int(v)
		}
		resp.Body.Close()
		cancel()
		if err := sc.Err(); err != nil {
			t.Fatal(fmt.Errorf("metrics of %s: %w", m.Name, err))
		}
	}
	return total
}
