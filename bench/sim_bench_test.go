package bench

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/server"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/cluster/harness"
)

// The shape of BenchmarkSimUp, given after -args: go test's own flags
// cannot carry them.
var (
	simNodes = flag.Int("sim-nodes", 100, "BenchmarkSimUp: simulated nodes (berth sim)")
	simTasks = flag.Int("sim-tasks", 10000, "BenchmarkSimUp: replicas of the one sim service")
	simPerf  = flag.String("sim-perf", "", "BenchmarkSimUp: record the leader with perf(1) during up into this file")
	simTTL   = flag.Duration("sim-ttl", 0, "BenchmarkSimUp: the managers' --heartbeat-ttl (0: their default, 15s)")
	simLog   = flag.String("sim-log", "error", "BenchmarkSimUp: the sim's --log-level (its log is in the cluster's directory)")
	simNoNet = flag.Bool("sim-no-network", false, "BenchmarkSimUp: network_mode: none (the service on no cluster network: no slices to allocate)")
)

// BenchmarkSimUp is the end-to-end scale run: three managers on loopback
// (real `berth server` processes, Raft between them), one `berth sim`
// process of -sim-nodes simulated nodes (each a real agent: its own
// certificate, heartbeats, blocking queries and batched reports over
// mutual TLS), and `berth up -d` of one sim service of -sim-tasks
// replicas. It reports the time from up until every replica runs (by the
// leader's berth_tasks gauge, then checked exactly once on the task
// list), tasks/s, and each process's peak resident memory and CPU.
//
//	go test -run '^$' -bench SimUp -benchtime 1x -timeout 60m ./bench/ -args -sim-nodes 100 -sim-tasks 10000
func BenchmarkSimUp(b *testing.B) {
	nodes, tasks := *simNodes, *simTasks
	bin := buildBerth(b)
	for range b.N {
		b.StopTimer()
		// The default limits (10,000 replicas a service) guard a cluster
		// from a typo; a scale run raises them past its size.
		limit := strconv.Itoa(2*tasks + 10_000)
		args := []string{"--" + server.FlagReplicasPerService, limit, "--" + server.FlagTasksPerApp, limit, "--" + server.FlagTasksPerCluster, limit}
		if *simTTL > 0 {
			args = append(args, "--heartbeat-ttl", simTTL.String())
		}
		c := harness.Start(b, bin, bin, harness.Options{ServerArgs: args})
		leader := c.Leader(b, 30*time.Second)
		token := c.Token(b, leader, "worker")
		// Room for every task with a fifth to spare, so the scheduler is
		// not the one searching for the last free node.
		perNode := (tasks*6/5)/nodes + 1
		sim := c.StartSim(b, leader, token, "bench", nodes,
			"--cpus", strconv.Itoa(perNode), "--memory", "64GiB", "--join-parallel", "16", "--parallel", "32",
			"--poll-every", "30s", "--log-level", *simLog)
		joinStart := time.Now()
		harness.WaitFor(b, 30*time.Minute, "every simulated node ready", c.ExpectNodesReady(leader, nodes))
		joined := time.Since(joinStart)
		file := filepath.Join(c.Dir(), "simbench.yaml")
		// The service is on the app's default network, as a Compose
		// service is: every node a task lands on takes a slice of it
		// (the sim runs no overlay, but the manager allocates as for any
		// node). -sim-no-network leaves that cost out.
		netMode := ""
		if *simNoNet {
			netMode = "    network_mode: none\n"
		}
		app := fmt.Sprintf("name: simbench\nservices:\n  web:\n    x-berth-driver: sim\n%s    deploy:\n      replicas: %d\n"+
			"      resources:\n        reservations:\n          cpus: \"1\"\n", netMode, tasks)
		if err := os.WriteFile(file, []byte(app), 0o644); err != nil {
			b.Fatal(err)
		}
		cpuBefore := cpuOf(b, c, sim)
		var perf *exec.Cmd
		if *simPerf != "" {
			perf = exec.Command("perf", "record", "-F", "99", "-g", "-o", *simPerf, "-p", strconv.Itoa(leader.PID()))
			if err := perf.Start(); err != nil {
				b.Fatalf("perf: %v", err)
			}
		}

		b.StartTimer()
		start := time.Now()
		c.MustRun(b, leader, "up", "-d", "-f", file)
		submitted := time.Since(start)
		var firstRun time.Duration
		midProfiled := false
		best, lastGain := 0, time.Now()
		// Read from a follower (its store is the same, replicated), a
		// quarter second apart: the gauge counts without sorting now
		// (View.TaskCountsByState), and a 2 s pace rounded every figure
		// to it (10,000 tasks "all running" at 10.1 or 12.1 s).
		watcher := follower(c, leader)
		waitEvery(b, 60*time.Minute, 250*time.Millisecond, "every replica running", func() error {
			n, err := runningTasks(watcher)
			if err != nil {
				return err
			}
			if n > 0 && firstRun == 0 {
				firstRun = time.Since(start)
			}
			if n >= tasks/2 && !midProfiled {
				midProfiled = true
				heapProfiles(b, c, "mid") // what the managers hold halfway through, not only at rest
			}
			if n > best {
				best, lastGain = n, time.Now()
			} else if time.Since(lastGain) > stallLimit {
				b.Fatalf("stalled: %d of %d running, none more for %s; the leader's gauges: %s (see its log; BERTH_TEST_LOGS=DIR keeps every log)", n, tasks, stallLimit, stateGauges(watcher))
			}
			if n < tasks {
				return fmt.Errorf("%d of %d running", n, tasks)
			}
			return nil
		})
		took := time.Since(start)
		b.StopTimer()

		if perf != nil {
			_ = perf.Process.Signal(os.Interrupt)
			_ = perf.Wait()
		}
		cpuAfter := cpuOf(b, c, sim)
		// Nodes that missed heartbeats on the way lost their tasks, which
		// were placed again: churn the figure includes.
		if g, err := gauges(watcher); err == nil {
			b.ReportMetric(g[`berth_tasks{state="lost"}`], "tasks-lost")
			b.ReportMetric(g[`berth_nodes{status="down"}`], "nodes-down-at-end")
		}
		// How often agents were answered their task list, on every
		// manager (a follower serves reads too): each answer rebuilds and
		// sends the node's whole list, so a wake of every agent for a
		// change of a few shows here as answers far above the nodes'
		// own changes.
		answers := 0.0
		for _, m := range c.Managers {
			g, err := gauges(m)
			if err != nil {
				b.Fatal(err)
			}
			answers += sumSeries(g, `berth_api_request_seconds_count{code="200",method="GET",route="GET `+api.PathNodeTasks+`"`)
		}
		b.ReportMetric(answers, "node-task-answers")
		checkExact(b, leader, tasks)
		b.ReportMetric(float64(tasks)/took.Seconds(), "tasks/s")
		b.ReportMetric(took.Seconds(), "s-up-to-all-running")
		b.ReportMetric(submitted.Seconds(), "s-submit")
		b.ReportMetric(firstRun.Seconds(), "s-first-running")
		b.ReportMetric(joined.Seconds(), "s-nodes-joined")
		for i, m := range c.Managers {
			b.ReportMetric(procKB(b, m.PID(), "VmHWM")/1024, fmt.Sprintf("m%d-peak-MB", i+1))
			b.ReportMetric((cpuAfter[i] - cpuBefore[i]).Seconds(), fmt.Sprintf("m%d-cpu-s", i+1))
		}
		b.ReportMetric(procKB(b, sim.PID(), "VmHWM")/1024, "sim-peak-MB")
		b.ReportMetric((cpuAfter[len(cpuAfter)-1] - cpuBefore[len(cpuBefore)-1]).Seconds(), "sim-cpu-s")
		lead := c.Leader(b, 30*time.Second)
		b.ReportMetric(procKB(b, lead.PID(), "VmRSS")*1024/float64(tasks), "leader-B/task")
		heapProfiles(b, c, "end")
		b.Logf("%d nodes joined in %s; %d tasks: submitted in %s, first running at %s, all running at %s (%.0f tasks/s)",
			nodes, joined.Round(time.Millisecond), tasks, submitted.Round(time.Millisecond), firstRun.Round(time.Millisecond),
			took.Round(time.Millisecond), float64(tasks)/took.Seconds())
	}
}

// waitEvery checks cond every period until it returns nil, failing b
// with its last reason after timeout.
func waitEvery(b *testing.B, timeout, period time.Duration, what string, cond func() error) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %v", what, err)
		}
		<-tick.C
	}
}

// follower is a manager other than leader.
func follower(c *harness.Cluster, leader *harness.Manager) *harness.Manager {
	for _, m := range c.Managers {
		if m != leader {
			return m
		}
	}
	return leader
}

// stallLimit ends a run in which no more replica ran for this long.
const stallLimit = 3 * time.Minute

// runningTasks reads berth_tasks{state="running"} on m: one small
// answer, where listing 100,000 tasks would load the managers.
func runningTasks(m *harness.Manager) (int, error) {
	g, err := gauges(m)
	return int(g[`berth_tasks{state="running"}`]), err
}

// gauges reads m's metrics, by series (`berth_nodes{status="down"}`).
func gauges(m *harness.Manager) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+api.PathMetrics, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(api.HeaderAuthorization, "Bearer "+m.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		// The value is after the last space: a label's value may hold
		// spaces (route="GET /v1/nodes/{id}/tasks").
		line := sc.Text()
		cut := strings.LastIndexByte(line, ' ')
		if cut < 0 || !strings.HasPrefix(line, "berth_") {
			continue
		}
		series, v := line[:cut], line[cut+1:]
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out[series] = f
		}
	}
	return out, sc.Err()
}

// sumSeries adds up every series in g whose name and labels start with
// prefix.
func sumSeries(g map[string]float64, prefix string) float64 {
	sum := 0.0
	for series, v := range g {
		if strings.HasPrefix(series, prefix) {
			sum += v
		}
	}
	return sum
}

// stateGauges lists m's task and node counts by state, for a failure.
func stateGauges(m *harness.Manager) string {
	g, err := gauges(m)
	if err != nil {
		return err.Error()
	}
	var out []string
	for series, v := range g {
		if strings.HasPrefix(series, "berth_tasks{") || strings.HasPrefix(series, "berth_nodes{") {
			out = append(out, fmt.Sprintf("%s %g", series, v))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// checkExact fails b unless each slot 1..n of the app comes to run
// exactly once within two minutes: the gauge counts every running task,
// one being replaced too, so it can reach n a moment before the slots do.
func checkExact(b *testing.B, m *harness.Manager, n int) {
	b.Helper()
	waitEvery(b, 2*time.Minute, 2*time.Second, "every slot running exactly once", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ts, _, err := m.Client().ListTasks(ctx, api.TaskQuery{App: "simbench"})
		if err != nil {
			return err
		}
		slots := map[int]int{}
		for _, t := range ts {
			if t.State == types.TaskRunning && t.DesiredState == types.DesiredRunning {
				slots[t.Slot]++
			}
		}
		var none, twice []int
		for s := 1; s <= n; s++ {
			switch {
			case slots[s] == 0:
				none = append(none, s)
			case slots[s] > 1:
				twice = append(twice, s)
			}
		}
		if len(none)+len(twice) > 0 {
			return fmt.Errorf("%d slots not running (first %v), %d running more than once (first %v)", len(none), none[:min(len(none), 5)], len(twice), twice[:min(len(twice), 5)])
		}
		return nil
	})
}

// cpuOf is the CPU time (user and system) so far of each manager, then of
// the sim.
func cpuOf(b *testing.B, c *harness.Cluster, sim *harness.Agent) []time.Duration {
	var out []time.Duration
	for _, m := range c.Managers {
		self, _ := procCPU(b, strconv.Itoa(m.PID()))
		out = append(out, self)
	}
	self, _ := procCPU(b, strconv.Itoa(sim.PID()))
	return append(out, self)
}

// procKB reads a kB field (VmRSS, VmHWM) of pid's /proc status.
func procKB(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// heapProfiles has every manager write a heap profile (suffixed .when)
// while it holds the tasks, when BERTH_HEAPPROFILE names where (cmd/berth/profile.go): the
// figure of manager memory per task is RSS, and the profile says what it
// is made of (`go tool pprof -sample_index=inuse_space -top FILE.PID`).
func heapProfiles(b *testing.B, c *harness.Cluster, when string) {
	path := os.Getenv("BERTH_HEAPPROFILE")
	if path == "" {
		return
	}
	for _, m := range c.Managers {
		name := fmt.Sprintf("%s.%d", path, m.PID())
		_ = os.Remove(name)
		defer func() { _ = os.Rename(name, name+"."+when) }()
		if err := syscall.Kill(m.PID(), syscall.SIGUSR1); err != nil {
			b.Fatalf("ask manager %d for a heap profile: %v", m.PID(), err)
		}
		waitEvery(b, time.Minute, 100*time.Millisecond, "heap profile "+name, func() error {
			_, err := os.Stat(name)
			return err
		})
		if rss := procKB(b, m.PID(), "VmRSS"); rss > 0 {
			b.Logf("manager %d: heap profile %s.%s, RSS %.0f MB", m.PID(), name, when, rss/1024)
		}
	}
}
