package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
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
}

// New prepares an empty cluster for tb: a network, a directory and a copy
// of the app binary appBin. Nothing runs yet; everything started later is
// killed when tb ends.
func New(tb testing.TB, bin, appBin string, opts Options) *Cluster {
	tb.Helper()
	c := &Cluster{bin: bin, dir: tb.TempDir(), net: pickNetwork(tb), opts: opts}
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

// Bootstrap starts the first manager, which creates the cluster, and waits
// until it leads.
func (c *Cluster) Bootstrap(tb testing.TB) *Manager {
	tb.Helper()
	m := c.newManager(tb)
	m.Start(tb)
	WaitFor(tb, managerStartTimeout, m.Name+" leads its new cluster", func() error {
		if !m.Running() {
			return fmt.Errorf("%s exited:\n%s", m.Name, m.Log(30))
		}
		ctx, cancel := callCtx()
		defer cancel()
		st, err := m.Client().Status(ctx)
		if err != nil {
			return err
		}
		if !st.Leader {
			return fmt.Errorf("%s is up but does not lead", m.Name)
		}
		return nil
	})
	return m
}

// JoinManager starts one more manager that joins via's cluster port with
// token, and waits until its API answers (becoming a voter may take
// longer; see ExpectVoters).
func (c *Cluster) JoinManager(tb testing.TB, via *Manager, token string) *Manager {
	tb.Helper()
	m := c.newManager(tb, "--join", via.ClusterAddr, "--token", token)
	m.Start(tb)
	WaitFor(tb, managerStartTimeout, m.Name+" answers", m.expectAnswers)
	return m
}

// newManager prepares the next manager, with its addresses and data dir.
func (c *Cluster) newManager(tb testing.TB, extra ...string) *Manager {
	tb.Helper()
	i := len(c.Managers) + 1
	if i > maxManagers {
		tb.Fatalf("a test cluster has at most %d managers", maxManagers)
	}
	m := &Manager{Process: c.newProcess(tb, fmt.Sprintf("m%d", i))}
	m.API, m.RaftAddr, m.ClusterAddr = c.net.managerAddrs(i)
	args := []string{"server",
		"--name", m.Name, "--data-dir", m.DataDir,
		"--addr", m.API, "--raft-addr", m.RaftAddr, "--cluster-addr", m.ClusterAddr,
	}
	args = append(args, c.opts.ServerArgs...)
	m.args = append(args, extra...)
	if c.opts.Partitionable {
		m.cgroup = newCgroup(tb, m.Name)
	}
	c.Managers = append(c.Managers, m)
	return m
}

// JoinAgent starts an agent (exec driver only) that joins via's cluster
// port with token; it does not wait (see ExpectNodesReady).
func (c *Cluster) JoinAgent(tb testing.TB, via *Manager, token string, spec AgentSpec) *Agent {
	tb.Helper()
	i := len(c.Agents) + 1
	if i > maxAgents {
		tb.Fatalf("a test cluster has at most %d agents", maxAgents)
	}
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("a%d", i)
	}
	a := &Agent{Process: c.newProcess(tb, spec.Name), Listen: c.net.agentAddr(i), Labels: spec.Labels}
	a.args = []string{"agent",
		"--join", via.ClusterAddr, "--token", token,
		"--name", a.Name, "--data-dir", a.DataDir, "--listen", a.Listen, "--driver", "exec",
	}
	keys := make([]string, 0, len(spec.Labels))
	for k := range spec.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a.args = append(a.args, "--label", k+"="+spec.Labels[k])
	}
	c.Agents = append(c.Agents, a)
	a.Start(tb)
	return a
}

func (c *Cluster) newProcess(tb testing.TB, name string) *Process {
	tb.Helper()
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	return &Process{
		Name: name, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, name+".log"),
		bin: c.bin, env: isolatedEnv(dir),
	}
}

// Run runs the berth CLI against manager m's API (--addr is added).
func (c *Cluster) Run(tb testing.TB, m *Manager, args ...string) Result {
	tb.Helper()
	r := runCLI(tb, c.bin, c.dir, c.dir, append([]string{"--addr", m.URL()}, args...)...)
	r.Args = args
	return r
}

// MustRun is Run that fails tb unless the command exits 0.
func (c *Cluster) MustRun(tb testing.TB, m *Manager, args ...string) Result {
	tb.Helper()
	r := c.Run(tb, m, args...)
	if r.Code != 0 {
		tb.Fatalf("on %s: %s", m.Name, r)
	}
	return r
}

// RunBare runs the berth binary with args as they are (no --addr), in the
// cluster's directory: `berth server --force-new-cluster ...` and such.
func (c *Cluster) RunBare(tb testing.TB, args ...string) Result {
	tb.Helper()
	return runCLI(tb, c.bin, c.dir, c.dir, args...)
}

// Bin is the berth binary the cluster runs.
func (c *Cluster) Bin() string { return c.bin }

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

// cleanup kills every process of the cluster and the tasks they started,
// and shows the logs of a failed test.
func (c *Cluster) cleanup(tb testing.TB) {
	for _, p := range c.processes() {
		p.Stop(tb, syscall.SIGKILL)
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
	for _, p := range c.processes() {
		tb.Logf("end of the log of %s (%s):\n%s", p.Name, strings.Join(p.args, " "), p.Log(40))
	}
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

// RunWithin is Run bounded by timeout: a command that outlives it is killed
// and reported as an error, for commands that must fail promptly.
func (c *Cluster) RunWithin(tb testing.TB, timeout time.Duration, m *Manager, args ...string) (Result, error) {
	tb.Helper()
	r, err := runCLIWithin(tb, timeout, c.bin, c.dir, c.dir, append([]string{"--addr", m.URL()}, args...)...)
	r.Args = args
	return r, err
}

// RunBareWithin is RunBare bounded by timeout, as RunWithin.
func (c *Cluster) RunBareWithin(tb testing.TB, timeout time.Duration, args ...string) (Result, error) {
	tb.Helper()
	return runCLIWithin(tb, timeout, c.bin, c.dir, c.dir, args...)
}

// ServerHasFlag reports whether `berth server` of the binary bin accepts
// the flag name ("--heartbeat-ttl"), for options a test uses when the
// binary offers them.
func ServerHasFlag(tb testing.TB, bin, name string) bool {
	tb.Helper()
	r := runCLI(tb, bin, tb.TempDir(), tb.TempDir(), "server", "--help")
	return strings.Contains(r.Stdout+r.Stderr, name+" ")
}

// AppProcesses counts the live processes of the cluster's app binary: the
// exec tasks that really run on the "hosts", whatever the managers think.
func (c *Cluster) AppProcesses() int { return len(processesOf(c.AppBin)) }

// TryJoinAgent runs an agent that is expected to be refused: it returns
// once the process exits, or an error if it still runs after timeout (it
// is then killed). The agent is not one of the cluster's Agents.
func (c *Cluster) TryJoinAgent(tb testing.TB, via *Manager, token, name string, timeout time.Duration) (Result, error) {
	tb.Helper()
	dir := filepath.Join(c.dir, name)
	return runCLIWithin(tb, timeout, c.bin, c.dir, dir, "agent",
		"--join", via.ClusterAddr, "--token", token,
		"--name", name, "--data-dir", filepath.Join(dir, "data"),
		"--listen", c.net.agentAddr(maxAgents), "--driver", "exec",
	)
}
