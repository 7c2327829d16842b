package hosts

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/supervise"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// The figures of docs/benchmarks.md ("Cluster of local hosts" and "Images
// on a cluster"), measured in one run and logged for the doc:
//
//	sudo BERTH_HOSTS_FIGURES=1 go test -count=1 -v -timeout 40m -run TestHostsFigures ./test/hosts/
//
// It is a measurement, not a check of a target: a missed target is logged,
// while what must hold for a figure to mean anything (every node ready,
// one replica per agent, the image on every engine) fails the test.
const figuresEnv = "BERTH_HOSTS_FIGURES"

const (
	bigLayers    = 5
	bigLayerSize = 20 << 20 // 5 x 20 MiB of random bytes: nothing compresses them
	figureRuns   = 3
)

func TestHostsFigures(t *testing.T) {
	if os.Getenv(figuresEnv) != "1" {
		t.Skipf("the figures of docs/benchmarks.md take minutes: set %s=1 to measure them", figuresEnv)
	}
	needHosts(t)
	c := newCLI(t, "bf")
	home := c.home
	base := h.TestImage(t)
	t.Logf("machine: %d cores, load average %s at the start", numCPU(), loadavg())

	// Run 1 of cluster create keeps its cluster for the image figures.
	name := figCluster(1)
	createCluster(t, c, name, 1)
	logMemory(t, home, name, "idle, right after create")
	ac := contextClient(t, home, name)
	ac.SetAddrs(managerAddrs(t, c))
	agents := agentNodes(t, ac)

	for run := 1; run <= figureRuns; run++ {
		bigImageRun(t, c, ac, name, base, agents, run)
	}
	coldUpCluster(t, c, ac, name, agents)
	logMemory(t, home, name, "with the 3-service app running (9 containers)")
	coldUpOneNode(t, c.bin)
	removeCluster(t, c, name)

	for run := 2; run <= figureRuns; run++ {
		n := figCluster(run)
		createCluster(t, c, n, run)
		removeCluster(t, c, n)
	}
	t.Logf("load average %s at the end", loadavg())
}

func figCluster(run int) string {
	return "f" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36) + strconv.Itoa(run)
}

// createCluster times cluster create 3+3 to its exit, which is once every
// manager is a member and every agent a ready node; the test checks that
// it is so.
func createCluster(t *testing.T, c cli, name string, run int) {
	t.Helper()
	load := loadavg()
	start := time.Now()
	r := c.must(t, "cluster", "create", name, "--managers", "3", "--agents", "3")
	took := time.Since(start)
	// A failed check below leaves the cluster up; removing a removed
	// cluster again is a harmless error.
	t.Cleanup(func() { c.run(t, "cluster", "rm", name) })
	ac := contextClient(t, c.home, name)
	ns, err := ac.ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, n := range ns {
		if n.Status == types.NodeReady {
			ready++
		}
	}
	ms, err := ac.Members(context.Background())
	if err != nil || len(ms) != 3 || ready != 3 {
		t.Fatalf("after create: %d members (%v), %d ready nodes of %d; want 3 and 3", len(ms), err, ready, len(ns))
	}
	verdict := "met"
	if took > 10*time.Second {
		verdict = "MISSED"
	}
	t.Logf("FIGURE create run %d: cluster create --managers 3 --agents 3 to every node ready: %.1fs (target <= 10 s: %s; load before %s)\n%s",
		run, took.Seconds(), verdict, load, indent(r.Stderr+r.Stdout))
}

func removeCluster(t *testing.T, c cli, name string) {
	t.Helper()
	start := time.Now()
	c.must(t, "cluster", "rm", name)
	t.Logf("cluster rm %s: %.1fs", name, time.Since(start).Seconds())
}

func managerAddrs(t *testing.T, c cli) []string {
	t.Helper()
	var out []string
	for _, m := range machines(t, c) {
		if m.Role == "manager" {
			out = append(out, net.JoinHostPort(m.Address, strconv.Itoa(machine.APIPort)))
		}
	}
	return out
}

// logMemory logs the VmRSS of each host's processes: a manager's berth,
// an agent's berth, and its engine (dockerd and the containerd it runs).
func logMemory(t *testing.T, home, cluster, when string) {
	t.Helper()
	dir := filepath.Join(home, "state", "berth", "hosts", cluster)
	var b strings.Builder
	for _, host := range []string{"m1", "m2", "m3", "a1", "a2", "a3"} {
		hd := filepath.Join(dir, host)
		fmt.Fprintf(&b, "  %s berth %s", host, rss(filepath.Join(hd, "berth.pid")))
		if host[0] == 'a' {
			fmt.Fprintf(&b, ", dockerd %s, containerd %s", pidRSS(supervise.ReadPid(filepath.Join(hd, "dockerd.pid"), "")),
				pidRSS(supervise.ReadPid(filepath.Join(hd, "run", "containerd", "containerd.pid"), "")))
		}
		b.WriteString("\n")
	}
	t.Logf("FIGURE memory (VmRSS), %s:\n%s", when, b.String())
}

func pidRSS(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if pid == 0 || err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// timedLine is a line of a command's output and when it came, from the
// command's start.
type timedLine struct {
	at   time.Duration
	text string
}

// runTimed runs a command, stamping each line of its output (stdout and
// stderr together) as it arrives.
func runTimed(ctx context.Context, env []string, name string, args ...string) ([]timedLine, time.Duration, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	var lines []timedLine
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines = append(lines, timedLine{time.Since(start), sc.Text()})
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	took := time.Since(start)
	pw.Close()
	<-done
	return lines, took, err
}

// at is "3.2s", or "none" for firstLine's -1.
func at(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func (l timedLine) String() string { return fmt.Sprintf("%6.2fs  %s", l.at.Seconds(), l.text) }

func formatLines(ls []timedLine) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString("    " + l.String() + "\n")
	}
	return b.String()
}

// firstLine is when the first line containing s came (-1 if none).
func firstLine(ls []timedLine, s string) time.Duration {
	for _, l := range ls {
		if strings.Contains(l.text, s) {
			return l.at
		}
	}
	return -1
}

// taskWatch polls an app's tasks while up runs: when each was first seen
// pulling and when its container started.
type taskWatch struct {
	mu        sync.Mutex
	pulling   map[string]time.Duration
	running   map[string]time.Duration // seen running, from the start
	started   map[string]time.Duration // the task's StartedAt, from the start
	allAt     time.Duration
	lastError error
}

func watchTasks(ctx context.Context, ac *api.Client, app string, want int, start time.Time) *taskWatch {
	w := &taskWatch{pulling: map[string]time.Duration{}, running: map[string]time.Duration{}, started: map[string]time.Duration{}, allAt: -1}
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if w.poll(ctx, ac, app, want, start) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *taskWatch) poll(ctx context.Context, ac *api.Client, app string, want int, start time.Time) bool {
	tasks, _, err := ac.ListTasks(ctx, api.TaskQuery{App: app})
	now := time.Since(start)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.lastError = err
		return false
	}
	for _, tk := range tasks {
		if _, ok := w.pulling[tk.ID]; !ok && strings.Contains(tk.Progress, "pull") {
			w.pulling[tk.ID] = now
		}
		if tk.State == types.TaskRunning {
			if _, ok := w.running[tk.ID]; !ok {
				w.running[tk.ID] = now
				w.started[tk.ID] = tk.StartedAt.Sub(start)
			}
		}
	}
	if len(w.running) >= want && w.allAt < 0 {
		w.allAt = now
		return true
	}
	return false
}

// wait returns when all wanted tasks were seen running, or fails t.
func (w *taskWatch) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	h.WaitFor(t, timeout, "every replica running", func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.allAt < 0 {
			return fmt.Errorf("%d running (last error %v)", len(w.running), w.lastError)
		}
		return nil
	})
}

// span is the earliest and the latest of a set of times.
func span(m map[string]time.Duration) (lo, hi time.Duration) {
	lo, hi = -1, -1
	for _, d := range m {
		if lo < 0 || d < lo {
			lo = d
		}
		hi = max(hi, d)
	}
	return lo, hi
}

func randomFile(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, int64(size)); err != nil {
		t.Fatal(err)
	}
}

// bigImage builds an image of bigLayers layers of random bytes on the
// test image (a static program on scratch, 6.5 MB), new to every engine
// and registry, and returns its tag and ID.
func bigImage(t *testing.T, base string) (tag, id string) {
	t.Helper()
	dir := t.TempDir()
	df := "FROM " + base + "\n"
	for i := range bigLayers {
		f := fmt.Sprintf("r%d", i)
		randomFile(t, filepath.Join(dir, f), bigLayerSize)
		df += "COPY " + f + " /" + f + "\n"
	}
	h.WriteFile(t, dir, "Dockerfile", df)
	tag = "berth-figures/big:" + strings.ToLower(rand.Text()[:10])
	docker(t, "build", "-q", "-t", tag, dir)
	t.Cleanup(func() { _, _ = h.Docker("rmi", "-f", tag) })
	return tag, docker(t, "image", "inspect", "--format", "{{.Id}}", tag)
}

func agentSocks(home, cluster string) []string {
	var out []string
	for _, a := range []string{"a1", "a2", "a3"} {
		out = append(out, filepath.Join(home, "state", "berth", "hosts", cluster, a, "docker.sock"))
	}
	return out
}

// bigImageRun is one run of the 100 MB figure: berth and the floor, in an
// order that alternates with the run.
func bigImageRun(t *testing.T, c cli, ac *api.Client, cluster, base string, agents map[string]string, run int) {
	t.Helper()
	tag, id := bigImage(t, base)
	size := docker(t, "image", "inspect", "--format", "{{.Size}}", tag)
	socks := agentSocks(c.home, cluster)
	load := loadavg()
	var berth, floor string
	if run%2 == 1 {
		berth = bigBerth(t, c, ac, cluster, tag, id, agents, socks, run)
		floor = bigFloor(t, cpuGroups(c.home, cluster), tag, id, socks)
	} else {
		floor = bigFloor(t, cpuGroups(c.home, cluster), tag, id, socks)
		berth = bigBerth(t, c, ac, cluster, tag, id, agents, socks, run)
	}
	first := "berth first"
	if run%2 == 0 {
		first = "floor first"
	}
	t.Logf("FIGURE image run %d (%s, image %s bytes, load before %s):\n  berth: %s\n  floor: %s", run, first, size, load, berth, floor)
	_, _ = h.Docker("rmi", "-f", tag)
}

// bigBerth is berth up of one service of 3 replicas of the image, timed
// from the command's start to the third replica running, with its parts:
// the push, the wait for a second manager to hold the image, the pulls.
func bigBerth(t *testing.T, c cli, ac *api.Client, cluster, tag, id string, agents map[string]string, socks []string, run int) string {
	t.Helper()
	app := fmt.Sprintf("big%d", run)
	file := h.WriteFile(t, t.TempDir(), "compose.yaml", "services:\n  big:\n    image: "+tag+"\n    deploy:\n      replicas: 3\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	groups := cpuGroups(c.home, cluster)
	cpu, psi := cpuSeconds(groups), pressure()
	start := time.Now()
	w := watchTasks(ctx, ac, app, 3, start)
	lines, took, err := runTimed(ctx, h.IsolatedEnv(c.home), c.bin, "up", "-p", app, "-f", file)
	if err != nil {
		t.Fatalf("berth up: %v\n%s", err, formatLines(lines))
	}
	w.wait(t, 3*time.Minute)
	used := cpuSince(groups, cpu) + "; " + pressureSince(psi, time.Since(start))
	if err := serviceSpread(ac, app, "big", agents, 3)(); err != nil {
		t.Fatalf("not one replica per agent: %v", err)
	}
	t.Logf("berth up of %s:\n%s", tag, formatLines(lines))
	w.mu.Lock()
	pullLo, pullHi := span(w.pulling)
	startLo, startHi := span(w.started)
	all := w.allAt
	w.mu.Unlock()
	pushAt, pushedAt, submitAt := firstLine(lines, "Pushing big"), firstLine(lines, "Pushed big"), firstLine(lines, "submitted")
	out := fmt.Sprintf("3 running at %.1fs (containers started %.1f-%.1fs); push %.1f-%.1fs (%.1fs), second manager holds it and app submitted at %.1fs, "+
		"pulls seen from %.1f to %.1fs; up returned at %.1fs; %s",
		all.Seconds(), startLo.Seconds(), startHi.Seconds(), pushAt.Seconds(), pushedAt.Seconds(), (pushedAt - pushAt).Seconds(),
		submitAt.Seconds(), pullLo.Seconds(), pullHi.Seconds(), took.Seconds(), used)
	c.must(t, "down", "-p", app, "--wait-timeout", "2m")
	removeFromAgents(t, id, socks)
	return out
}

// bigFloor is docker save | docker load into each agent's engine, one
// after another.
func bigFloor(t *testing.T, groups map[string][]int, tag, id string, socks []string) string {
	t.Helper()
	var parts []string
	cpu, psi := cpuSeconds(groups), pressure()
	start := time.Now()
	for i, sock := range socks {
		s := time.Now()
		out, err := exec.Command("bash", "-o", "pipefail", "-c", "docker save "+tag+" | docker -H unix://"+sock+" load").CombinedOutput()
		if err != nil {
			t.Fatalf("floor into a%d: %v\n%s", i+1, err, out)
		}
		parts = append(parts, fmt.Sprintf("a%d %.1fs", i+1, time.Since(s).Seconds()))
	}
	took := time.Since(start)
	used := cpuSince(groups, cpu) + "; " + pressureSince(psi, took)
	for _, sock := range socks {
		if got := docker(t, "-H", "unix://"+sock, "image", "inspect", "--format", "{{.Id}}", tag); got != id {
			t.Fatalf("%s has %s as %s, want %s", sock, tag, got, id)
		}
	}
	removeFromAgents(t, id, socks)
	return fmt.Sprintf("%.1fs (%s); %s", took.Seconds(), strings.Join(parts, ", "), used)
}

// removeFromAgents removes the image from the agents' engines once no
// container there uses it, so the next run starts where this one did.
func removeFromAgents(t *testing.T, id string, socks []string) {
	t.Helper()
	for _, sock := range socks {
		h.WaitFor(t, 2*time.Minute, "no container on "+sock, func() error {
			out, err := h.Docker("-H", "unix://"+sock, "ps", "-aq")
			if err != nil || out != "" {
				return fmt.Errorf("containers %q (%v)", out, err)
			}
			return nil
		})
		if out, err := h.Docker("-H", "unix://"+sock, "rmi", "-f", id); err != nil {
			t.Fatalf("remove %s from %s: %v %s", id, sock, err, out)
		}
	}
}

// writeColdApp writes a 3-service app whose images are built (FROM the
// base, a RUN of a nonce each, so no build cache serves them) and run 3
// replicas each.
func writeColdApp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	nonce := rand.Text()
	compose := "services:\n"
	for _, svc := range []string{"web", "api", "worker"} {
		d := filepath.Join(dir, svc)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		h.WriteFile(t, d, "Dockerfile", "FROM "+baseImage+"\nRUN echo "+nonce+" "+svc+" > /msg\nCMD [\"sleep\", \"3600\"]\n")
		compose += "  " + svc + ":\n    build: ./" + svc + "\n    deploy:\n      replicas: 3\n"
	}
	return h.WriteFile(t, dir, "compose.yaml", compose)
}

// coldUp times berth up of the cold app to its exit and reads when its
// last replica started.
func coldUp(t *testing.T, bin, home string, env []string, app string, client func() *api.Client) (string, []timedLine) {
	t.Helper()
	file := writeColdApp(t)
	t.Cleanup(func() {
		for _, svc := range []string{"web", "api", "worker"} {
			_, _ = h.Docker("rmi", "-f", app+"-"+svc)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	load, psi := loadavg(), pressure()
	start := time.Now()
	lines, took, err := runTimed(ctx, append(h.IsolatedEnv(home), env...), bin, "up", "-p", app, "-f", file)
	if err != nil {
		t.Fatalf("berth up: %v\n%s", err, formatLines(lines))
	}
	tasks, _, err := client().ListTasks(context.Background(), api.TaskQuery{App: app})
	if err != nil {
		t.Fatal(err)
	}
	var last time.Duration
	running := 0
	for _, tk := range tasks {
		if tk.State == types.TaskRunning {
			running++
			last = max(last, tk.StartedAt.Sub(start))
		}
	}
	if running != 9 {
		t.Fatalf("%d replicas running after up, want 9", running)
	}
	return fmt.Sprintf("up returned at %.1fs, last of 9 replicas started at %.1fs, first push at %s, submitted at %s (load before %s; %s)",
		took.Seconds(), last.Seconds(), at(firstLine(lines, "Pushing")), at(firstLine(lines, "submitted")), load, pressureSince(psi, took)), lines
}

func coldUpCluster(t *testing.T, c cli, ac *api.Client, cluster string, agents map[string]string) {
	t.Helper()
	app := "cold3"
	fig, lines := coldUp(t, c.bin, c.home, nil, app, func() *api.Client { return ac })
	for _, svc := range []string{"web", "api", "worker"} {
		if err := serviceSpread(ac, app, svc, agents, 3)(); err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
	}
	t.Logf("FIGURE cold up, 3 builds on the 3-agent cluster %s: %s\n%s", cluster, fig, formatLines(lines))
}

// coldUpOneNode is the same file on one node: berth up with no context,
// which starts the embedded dev cluster (its data in a home of the
// test's own), stopped at the end.
func coldUpOneNode(t *testing.T, bin string) {
	t.Helper()
	hostPort := strings.TrimPrefix(api.DefaultAddr, "http://")
	l, err := net.Listen("tcp", hostPort)
	if err != nil {
		t.Logf("FIGURE cold up on one node: not measured, %s is in use: %v", hostPort, err)
		return
	}
	l.Close()
	home, err := os.MkdirTemp("", "bd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	dc := cli{bin: bin, home: home}
	app := "cold1"
	client := func() *api.Client { return h.LocalClient(home, api.DefaultAddr) }
	t.Cleanup(func() { stopDevCluster(t, dc, client()) })
	fig, lines := coldUp(t, bin, home, []string{"BERTH_ADDR="}, app, client)
	t.Logf("FIGURE cold up, 3 builds on one node (the embedded dev cluster): %s\n%s", fig, formatLines(lines))
	dc.must(t, "down", "-p", app, "--wait-timeout", "2m")
}

// stopDevCluster stops the dev cluster the test started: server stop, else
// its PID.
func stopDevCluster(t *testing.T, dc cli, c *api.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return
	}
	if r := dc.run(t, "server", "stop"); r.Code == 0 {
		return
	}
	if st.PID > 0 {
		t.Logf("server stop failed; killing the dev cluster, pid %d", st.PID)
		_ = syscall.Kill(st.PID, syscall.SIGKILL)
	}
}

// cpuGroups are the processes whose CPU time a figure reports, by role:
// where the time of a push, a replication and a pull goes.
func cpuGroups(home, cluster string) map[string][]int {
	dir := filepath.Join(home, "state", "berth", "hosts", cluster)
	g := map[string][]int{"machine's dockerd": {supervise.ReadPid("/var/run/docker.pid", "")}}
	for _, host := range []string{"m1", "m2", "m3", "a1", "a2", "a3"} {
		hd := filepath.Join(dir, host)
		berth := supervise.ReadPid(supervise.ChildPidfile(filepath.Join(hd, "berth.pid")), "")
		if host[0] == 'm' {
			g["managers' berth"] = append(g["managers' berth"], berth)
			continue
		}
		g["agents' berth"] = append(g["agents' berth"], berth)
		g["agents' engines"] = append(g["agents' engines"], supervise.ReadPid(filepath.Join(hd, "dockerd.pid"), ""),
			supervise.ReadPid(filepath.Join(hd, "run", "containerd", "containerd.pid"), ""))
	}
	return g
}

// cpuSeconds is the CPU time (user and system, with reaped children) of
// each group.
func cpuSeconds(groups map[string][]int) map[string]float64 {
	out := map[string]float64{}
	for name, pids := range groups {
		for _, pid := range pids {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if pid == 0 || err != nil {
				continue
			}
			// The fields after the command's ")" start at the state (3rd).
			s := string(b)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
				if i < len(f) {
					v, _ := strconv.ParseFloat(f[i], 64)
					out[name] += v / 100 // USER_HZ
				}
			}
		}
	}
	return out
}

// cpuSince is "machine's dockerd 2.9s, ..." of the time used since before.
func cpuSince(groups map[string][]int, before map[string]float64) string {
	now := cpuSeconds(groups)
	var parts []string
	for _, name := range []string{"machine's dockerd", "managers' berth", "agents' berth", "agents' engines"} {
		parts = append(parts, fmt.Sprintf("%s %.1fs", name, now[name]-before[name]))
	}
	return "CPU: " + strings.Join(parts, ", ")
}

// pressure is the kernel's stall totals (PSI, microseconds): the time
// some task waited for a CPU, and some or all waited on I/O.
func pressure() map[string]float64 {
	out := map[string]float64{}
	for _, res := range []string{"cpu", "io"} {
		b, err := os.ReadFile("/proc/pressure/" + res)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			if v, ok := strings.CutPrefix(f[len(f)-1], "total="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				out[res+" "+f[0]] = n
			}
		}
	}
	return out
}

// pressureSince is the share of the wall time since before that tasks
// stalled: "cpu some 30%, io some 60%, io full 40%".
func pressureSince(before map[string]float64, wall time.Duration) string {
	now := pressure()
	var parts []string
	for _, k := range []string{"cpu some", "io some", "io full"} {
		if _, ok := now[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", k, (now[k]-before[k])/float64(wall.Microseconds())*100))
		}
	}
	return "stalled: " + strings.Join(parts, ", ")
}
