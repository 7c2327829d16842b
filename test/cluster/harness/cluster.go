package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testkit"
)

// Deadlines of the cluster's processes: generous, since two busy cores may
// be starting a dozen processes at once.
const (
	managerStartTimeout = 60 * time.Second
	agentStartTimeout   = 60 * time.Second
)

// Options shape a cluster started with Start.
type Options struct {
	// Managers is how many managers form the Raft group (default 3).
	Managers int
	// Agents are the agents that join, in order (default: none).
	Agents []AgentSpec
	// ServerArgs are added to every manager's command line, e.g.
	// "--heartbeat-ttl", "3s".
	ServerArgs []string
	// Partitionable runs each manager in its own cgroup, so Partition can
	// cut it off; a machine without cgroup v2 or root skips the test.
	Partitionable bool
}

// AgentSpec describes one agent.
type AgentSpec struct {
	Name   string
	Labels map[string]string
}

// Zones returns one agent per zone, named a1, a2, ... and labelled zone=z.
func Zones(zones ...string) []AgentSpec {
	specs := make([]AgentSpec, len(zones))
	for i, z := range zones {
		specs[i] = AgentSpec{Name: fmt.Sprintf("a%d", i+1), Labels: map[string]string{"zone": z}}
	}
	return specs
}

// Cluster is a set of berth processes on one loopback network.
type Cluster struct {
	Managers []*Manager
	Agents   []*Agent
	// AppBin is this cluster's private copy of the test app, for exec
	// services; its processes are killed at cleanup.
	AppBin string

	bin  string
	dir  string
	net  network
	opts Options
	// admin is the admin token the first manager printed at bootstrap
	// (a string), which every API call and CLI run of the test shows.
	admin *atomic.Value
}

// New prepares an empty cluster for tb: a network, a directory and a copy
// of the app binary appBin. Nothing runs yet; everything started later is
// killed when tb ends.
func New(tb testing.TB, bin, appBin string, opts Options) *Cluster {
	tb.Helper()
	c := &Cluster{bin: bin, dir: tb.TempDir(), net: pickNetwork(tb), opts: opts, admin: &atomic.Value{}}
	c.admin.Store("")
	c.AppBin = filepath.Join(c.dir, "app")
	if err := copyFile(appBin, c.AppBin, 0o755); err != nil {
		tb.Fatalf("copy the app binary: %v", err)
	}
	tb.Cleanup(func() { c.cleanup(tb) })
	return c
}

// Start forms a cluster: the first manager bootstraps, the others join it
// with the manager token and become voters, then the agents join with the
// worker token. It returns once all managers are voters under one leader and
// every agent is a ready node.
func Start(tb testing.TB, bin, appBin string, opts Options) *Cluster {
	tb.Helper()
	if opts.Managers == 0 {
		opts.Managers = 3
	}
	c := New(tb, bin, appBin, opts)
	first := c.Bootstrap(tb)
	managerToken := c.Token(tb, first, "manager")
	for range opts.Managers - 1 {
		c.JoinManager(tb, first, managerToken)
	}
	WaitFor(tb, managerStartTimeout, "every manager a voter under one leader", c.ExpectVoters(tb, first, opts.Managers))
	workerToken := c.Token(tb, first, "worker")
	for _, spec := range opts.Agents {
		c.JoinAgent(tb, first, workerToken, spec)
	}
	WaitFor(tb, agentStartTimeout, "every agent a ready node", c.ExpectNodesReady(first, len(opts.Agents)))
	return c
}

// Dir is a directory of the cluster's for the test's own files.
func (c *Cluster) Dir() string { return c.dir }

// Live returns the managers whose process runs and is not paused.
func (c *Cluster) Live() []*Manager {
	var out []*Manager
	for _, m := range c.Managers {
		if m.Running() && !m.paused {
			out = append(out, m)
		}
	}
	return out
}

// AppProcesses counts the live processes of the cluster's app binary: the
// exec tasks that really run on the "hosts", whatever the managers think.
func (c *Cluster) AppProcesses() int { return len(processesOf(c.AppBin)) }

func (c *Cluster) newProcess(tb testing.TB, name string) *Process {
	tb.Helper()
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	return &Process{
		Name: name, DataDir: c.dataDirOf(name), LogPath: filepath.Join(dir, name+".log"),
		bin: c.bin, env: testkit.IsolatedEnv(dir),
	}
}

// dataDirOf is the data directory of the process named name.
func (c *Cluster) dataDirOf(name string) string { return filepath.Join(c.dir, name, "data") }

// cleanup kills every process of the cluster and the tasks they started,
// and shows the logs of a failed test.
func (c *Cluster) cleanup(tb testing.TB) {
	// A profiled run (BERTH_CPUPROFILE, cmd/berth) stops gracefully: a
	// process killed -9 writes no profile.
	sig := syscall.SIGKILL
	if os.Getenv("BERTH_CPUPROFILE") != "" {
		sig = syscall.SIGTERM
	}
	for _, p := range c.processes() {
		p.Stop(tb, sig)
	}
	killProcessesOf(c.AppBin)
	for _, p := range c.processes() {
		if p.cgroup != "" {
			removeCgroup(tb, p.cgroup)
		}
	}
	if !tb.Failed() {
		return
	}
	keep := os.Getenv("BERTH_TEST_LOGS")
	for _, p := range c.processes() {
		tb.Logf("end of the log of %s (%s):\n%s", p.Name, strings.Join(p.args, " "), p.Log(40))
		// The cluster's directory is the test's and goes with it; a long
		// run that failed (a scale benchmark's stall) is read afterwards.
		if keep != "" {
			if err := keepLog(p.LogPath, filepath.Join(keep, p.Name+".log")); err != nil {
				tb.Logf("keeping the log of %s: %v", p.Name, err)
			}
		}
	}
}

// keepLog copies the log at from to to, making to's directory.
func keepLog(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}

func (c *Cluster) processes() []*Process {
	var ps []*Process
	for _, m := range c.Managers {
		ps = append(ps, m.Process)
	}
	for _, a := range c.Agents {
		ps = append(ps, a.Process)
	}
	return ps
}
