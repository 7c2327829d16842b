package hosts

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
	"github.com/berth-dev/berth/test/testkit"
)

// shopPort is the shop's published port (its compose file's default). Each
// host is a network namespace of its own, so it collides with nothing.
const shopPort = "8443"

// TestShopOnHosts deploys examples/shop, unchanged, on one manager and
// three agent hosts (each with its own engine, so every image travels
// through the cluster's registry), and checks that lb's published port
// answers on every agent's address through the routing mesh, with a page
// that proves web reached auth, search, redis, MariaDB and the log
// service, wherever each of them runs, and that the three web replicas,
// one per agent, all serve through lb; then that a rollout of web loses
// no request.
//
// About two minutes with the seven images already built (their pushes to
// the cluster and pulls on three engines are most of it), four to six
// with a cold build from Debian's mirror: it runs only with
// BERTH_TEST_SHOP=1.
func TestShopOnHosts(t *testing.T) {
	if os.Getenv("BERTH_TEST_SHOP") == "" {
		t.Skip("set BERTH_TEST_SHOP=1 to deploy examples/shop on three agent hosts (minutes)")
	}
	needHosts(t)
	c := newCLI(t, "bs")
	name := "s" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	start := time.Now()
	c.must(t, "cluster", "create", name, "--managers", "1", "--agents", "3")
	t.Logf("cluster create 1+3: %.1fs", time.Since(start).Seconds())
	t.Cleanup(func() { t.Logf("cleanup: %s", c.run(t, "cluster", "rm", name)) })

	ac := contextClient(t, c.home, name)
	ac.SetAddrs(managerAddrs(t, c))
	agents := agentNodes(t, ac)
	addrs := agentAddrs(t, c)

	root, err := h.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	app := "shop" + name
	file := filepath.Join(root, "examples", "shop", "compose.yaml")
	start = time.Now()
	r := c.must(t, "up", "--build", "-p", app, "-f", file, "--wait-timeout", "15m")
	t.Logf("up (cached builds, push to the cluster, pulls on three agents, every service healthy): %.1fs\n%s",
		time.Since(start).Seconds(), r.Stderr)
	h.WaitFor(t, 2*time.Minute, "web on the three agents", serviceSpread(ac, app, "web", agents, 3))
	t.Logf("placement: %s", placement(t, ac, app, agents))

	// Every agent's address answers, whichever node lb runs on, and
	// reaches the web replicas on every node (one per agent).
	first := map[string]bool{} // the web replicas that served
	for _, host := range sortedKeys(addrs) {
		addr := net.JoinHostPort(addrs[host], shopPort)
		start := time.Now()
		if err := testkit.Poll(time.Minute, h.ShopServed(addr, map[string]bool{}, 1)); err != nil {
			t.Errorf("%s: https://%s/ through the mesh: %v", host, addr, err)
			continue
		}
		took := time.Since(start)
		p, err := h.GetShop(addr)
		t.Logf("%s: https://%s/ answered a complete page after %.1fs; again: %v\n%s", host, addr, took.Seconds(), err, p.Body)
		if err := testkit.Poll(time.Minute, h.ShopServed(addr, first, 3)); err != nil {
			t.Errorf("%s: https://%s/: %v", host, addr, err)
		}
	}
	if t.Failed() {
		return
	}

	t.Run("a rollout of web loses no request", func(t *testing.T) {
		// A second file changes web's environment: up rolls web alone.
		roll := h.WriteFile(t, t.TempDir(), "roll.yaml", "services:\n  web:\n    environment:\n      SHOP_ROLL: \"2\"\n")
		addr := net.JoinHostPort(addrs[sortedKeys(addrs)[0]], shopPort)
		l := startShopLoop(addr)
		start := time.Now()
		r := c.must(t, "up", "-p", app, "-f", file, "-f", roll, "--wait-timeout", "10m")
		t.Logf("up rolling web: %.1fs\n%s", time.Since(start).Seconds(), r.Stdout)
		// Pages come from three new replicas, none of the first ones.
		next := map[string]bool{}
		h.WaitFor(t, 2*time.Minute, "pages from three new web replicas", func() error {
			if err := h.ShopServed(addr, next, 3)(); err != nil {
				return err
			}
			for w := range next {
				if first[w] {
					delete(next, w)
					return fmt.Errorf("web replica %s of before the rollout still serves", w)
				}
			}
			return nil
		})
		ok, failed := l.stop()
		t.Logf("through %s during the rollout: %d complete pages, %d failed", addr, ok, len(failed))
		if ok == 0 || len(failed) > 0 {
			t.Errorf("%d requests failed during the rollout (%d served), the first: %v", len(failed), ok, failed[:min(3, len(failed))])
		}
	})
}

// shopLoop GETs the shop's page, one request after another, until
// stopped (at most 10 minutes), counting complete pages and keeping the
// failures.
type shopLoop struct {
	quit, done chan struct{}
	ok         int
	failed     []error
}

func startShopLoop(addr string) *shopLoop {
	l := &shopLoop{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
			select {
			case <-l.quit:
				return
			default:
			}
			p, err := h.GetShop(addr)
			if err == nil {
				err = p.Check()
			}
			if err != nil {
				l.failed = append(l.failed, fmt.Errorf("%s: %w", time.Now().Format("15:04:05.000"), err))
			} else {
				l.ok++
			}
		}
	}()
	return l
}

// stop ends the loop and returns its counts.
func (l *shopLoop) stop() (ok int, failed []error) {
	close(l.quit)
	<-l.done
	return l.ok, l.failed
}

// agentAddrs maps the agent hosts' names to their addresses.
func agentAddrs(t *testing.T, c cli) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range machines(t, c) {
		if m.Role == "agent" {
			out[m.Name] = m.Address
		}
	}
	if len(out) != 3 {
		t.Fatalf("agent machines %v, want three", out)
	}
	return out
}

// placement says which agent runs each running task of the app, for the
// log: it explains which calls crossed hosts.
func placement(t *testing.T, c *api.Client, app string, agents map[string]string) string {
	t.Helper()
	tasks, _, err := c.ListTasks(context.Background(), api.TaskQuery{App: app})
	if err != nil {
		t.Fatal(err)
	}
	host := map[string]string{}
	for n, id := range agents {
		host[id] = n
	}
	on := map[string][]string{}
	for _, tk := range tasks {
		if tk.State == types.TaskRunning {
			on[host[tk.NodeID]] = append(on[host[tk.NodeID]], tk.Service)
		}
	}
	var parts []string
	for _, n := range sortedKeys(on) {
		sort.Strings(on[n])
		parts = append(parts, n+": "+strings.Join(on[n], " "))
	}
	return strings.Join(parts, "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
