package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// clusterPool is where the overlay's addresses (task addresses, VIPs,
// each slice's gateway where berth's DNS listens) come from.
var clusterPool = netip.MustParsePrefix("10.240.0.0/12")

// netCluster is the one cluster the network tests share: a manager and
// three agents (a1 runs the clients, a2 and a3 the services they call),
// and a directory bind-mounted into every replica as /rec (their SIGTERM
// records, the clients' stop and mark files).
type netCluster struct {
	c     cli
	name  string
	ac    *api.Client
	nodes map[string]string // host name -> node ID
	hosts map[string]string // node ID -> host name
	addrs map[string]string // host name -> its address on the machine's bridge
	dir   string
}

func newNetCluster(t *testing.T, prefix string) *netCluster {
	t.Helper()
	c := newCLI(t, prefix)
	n := &netCluster{c: c, name: prefix + strconv.FormatInt(time.Now().UnixNano()%1e6, 36),
		hosts: map[string]string{}, addrs: map[string]string{}}
	start := time.Now()
	c.must(t, "cluster", "create", n.name, "--managers", "1", "--agents", "3")
	t.Logf("cluster create 1+3: %.1fs", time.Since(start).Seconds())
	t.Cleanup(func() { t.Logf("cleanup: %s", c.run(t, "cluster", "rm", n.name)) })
	n.ac = contextClient(t, c.home, n.name)
	n.nodes = agentNodes(t, n.ac)
	for host, id := range n.nodes {
		n.hosts[id] = host
	}
	for _, m := range machines(t, c) {
		n.addrs[m.Name] = m.Address
	}
	dir, err := os.MkdirTemp("", "bnrec")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n.dir = dir
	return n
}

// up writes the compose file and runs berth up of it as app.
func (n *netCluster) up(t *testing.T, app, compose string) h.Result {
	t.Helper()
	file := h.WriteFile(t, t.TempDir(), app+".yaml", compose)
	start := time.Now()
	r := n.c.must(t, "up", "-p", app, "-f", file)
	t.Logf("up %s: %.1fs", app, time.Since(start).Seconds())
	return r
}

func (n *netCluster) sock(host string) string {
	return filepath.Join(n.c.home, "state", "berth", "hosts", n.name, host, "docker.sock")
}

// netns is the host's network namespace, for what the figures run on the
// host itself.
func (n *netCluster) netns(host string) string {
	return "/run/netns/berth-" + n.name + "-" + host
}

// tasks are the running tasks of a service.
func (n *netCluster) tasks(t *testing.T, app, svc string) []*types.Task {
	t.Helper()
	all, _, err := n.ac.ListTasks(context.Background(), api.TaskQuery{App: app})
	if err != nil {
		t.Fatal(err)
	}
	var out []*types.Task
	for _, tk := range all {
		if tk.Service == svc && tk.State == types.TaskRunning && tk.DesiredState == types.DesiredRunning {
			out = append(out, tk)
		}
	}
	slices.SortFunc(out, func(a, b *types.Task) int { return a.Slot - b.Slot })
	return out
}

// serving is met when svc runs want healthy replicas, each with an
// address on network key, on the hosts named (any, when none are).
func (n *netCluster) serving(app, svc string, want int, key string, on ...string) func() error {
	return func() error {
		all, _, err := n.ac.ListTasks(context.Background(), api.TaskQuery{App: app})
		if err != nil {
			return err
		}
		got := 0
		for _, tk := range all {
			if tk.Service != svc || tk.State != types.TaskRunning || tk.DesiredState != types.DesiredRunning {
				continue
			}
			if len(on) > 0 && !slices.Contains(on, n.hosts[tk.NodeID]) {
				return fmt.Errorf("%s's task %s runs on %s, want one of %v", svc, tk.Name(), n.hosts[tk.NodeID], on)
			}
			if tk.Health != types.HealthHealthy {
				return fmt.Errorf("%s's task %s is %q, not healthy yet", svc, tk.Name(), tk.Health)
			}
			if tk.Addresses[key] == "" {
				return fmt.Errorf("%s's task %s reports no address on %s (addresses %v)", svc, tk.Name(), key, tk.Addresses)
			}
			got++
		}
		if got != want {
			return fmt.Errorf("%s: %d healthy replicas, want %d", svc, got, want)
		}
		return nil
	}
}

// hostnames maps each task's container hostname (the first 12 hex digits
// of its container ID, Docker's default) to the task.
func hostnames(tasks []*types.Task) map[string]*types.Task {
	out := map[string]*types.Task{}
	for _, tk := range tasks {
		if len(tk.ContainerID) >= 12 {
			out[tk.ContainerID[:12]] = tk
		}
	}
	return out
}

// docker runs the docker CLI against a host's engine.
func (n *netCluster) docker(host string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", append([]string{"-H", "unix://" + n.sock(host)}, args...)...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("docker %s on %s: %w: %s", strings.Join(args, " "), host, err, s)
	}
	return s, nil
}

// run runs an app client (/app ARGS...) in the task's container, within
// timeout, and decodes the JSON line it prints into v (nil: none).
func (n *netCluster) run(tk *types.Task, timeout time.Duration, v any, args ...string) error {
	out, err := n.docker(n.hosts[tk.NodeID], timeout, append([]string{"exec", tk.ContainerID, "/app"}, args...)...)
	if err != nil || v == nil {
		return err
	}
	if err := json.Unmarshal([]byte(lastLine(out)), v); err != nil {
		return fmt.Errorf("/app %s in %s: %w: %s", strings.Join(args, " "), tk.Name(), err, out)
	}
	return nil
}

// must is run that fails t.
func (n *netCluster) must(t *testing.T, tk *types.Task, timeout time.Duration, v any, args ...string) {
	t.Helper()
	if err := n.run(tk, timeout, v, args...); err != nil {
		t.Fatal(err)
	}
}

// background starts a client loop in the task's container; wait returns
// its result once the loop ended (it is bounded by its own flags).
func (n *netCluster) background(tk *types.Task, timeout time.Duration, v any, args ...string) (wait func() error) {
	done := make(chan error, 1)
	go func() { done <- n.run(tk, timeout, v, args...) }()
	return func() error { return <-done }
}

// touch makes a file in the shared directory (a loop's stop file).
func (n *netCluster) touch(t *testing.T, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(n.dir, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// exists is met once a replica made the file in the shared directory.
func (n *netCluster) exists(name string) func() error {
	return func() error {
		_, err := os.Stat(filepath.Join(n.dir, name))
		return err
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// stopRecord is what the test app writes at SIGTERM (app/serve.go).
type stopRecord struct {
	Host      string              `json:"host"`
	SigtermAt int64               `json:"sigterm_at"`
	Addrs     []string            `json:"addrs"`
	Lookups   map[string][]string `json:"lookups"`
	HTTPAfter int64               `json:"http_after"`
	UDPAfter  int64               `json:"udp_after"`
	Final     bool                `json:"final"`
}

// records are the SIGTERM records in the shared directory, by host.
func (n *netCluster) records(t *testing.T) map[string]stopRecord {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(n.dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]stopRecord{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r stopRecord
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[r.Host] = r
	}
	return out
}

// newFinalRecords is met once want records not in before are final; they
// are put in *got.
func (n *netCluster) newFinalRecords(t *testing.T, before map[string]stopRecord, want int, got *[]stopRecord) func() error {
	return func() error {
		*got = (*got)[:0]
		for host, r := range n.records(t) {
			if _, ok := before[host]; ok {
				continue
			}
			if !r.Final {
				return fmt.Errorf("%s got SIGTERM and is still lingering", host)
			}
			*got = append(*got, r)
		}
		if len(*got) != want {
			return fmt.Errorf("%d new final SIGTERM records, want %d", len(*got), want)
		}
		return nil
	}
}

// inPool reports whether every address is in the cluster's pool.
func inPool(addrs []string) bool {
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || !clusterPool.Contains(ip) {
			return false
		}
	}
	return len(addrs) > 0
}
