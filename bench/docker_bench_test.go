package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	h "github.com/berth-dev/berth/test/e2e/harness"
)

// The convergence benchmark deploys the same 100 replicas of the small
// FROM scratch test image three ways in one run, on the local engine:
//
//   - berth: `berth up` of a 100-replica service against a dev server,
//     timed until up returns, which is when every replica has run for
//     types.MonitorPeriod; berth-running-s is when the last one started;
//   - docker run: 100 `docker run -d`, 8 at a time, on the default bridge,
//     and again on a user-defined network with a service alias (what berth
//     does for each replica, so the like-for-like baseline);
//   - docker-compose v1: `docker-compose up -d --scale app=100`.
//
// docker run and docker-compose put the containers on Docker's default
// bridge network (network_mode: bridge in an override file for compose):
// with a network of its own, removing 100 containers often leaves Docker
// 20.10 with stale endpoints, and the network cannot be removed until
// dockerd restarts. berth makes and removes its app network as usual.
//
// Each is cleaned up before the next starts, outside the timing. The
// *-dockerd-s metrics are the engine's own CPU time (user + system) in each
// timed part: on a small machine it is the floor every way of starting
// containers pays, and the engine is shared with whatever else runs. Run it
// with
//
//	go test -run '^$' -bench Converge100 -timeout 30m ./bench/
const (
	convergeReplicas = 100
	dockerRunWorkers = 8
	benchLabel       = "berth.bench=converge"
)

const convergeCompose = `
services:
  app:
    image: {{image}}
    labels:
      berth.bench: converge
    deploy:
      replicas: {{replicas}}
`

// composeOnBridge is the override file for docker-compose (see above).
const composeOnBridge = `
services:
  app:
    network_mode: bridge
`

func BenchmarkConverge100(b *testing.B) {
	h.RequireDocker(b)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		b.Fatalf("docker-compose (v1) is not installed: run scripts/setup.sh")
	}
	img := h.TestImage(b)
	bin := buildBerth(b)
	dir := b.TempDir()
	file := h.WriteFile(b, dir, "compose.yaml", renderCompose(img, convergeReplicas))
	bridge := h.WriteFile(b, dir, "compose.bridge.yaml", composeOnBridge)
	h.RemoveLabelled(b, benchLabel) // what an interrupted earlier run left

	var berth, berthRunning, run, runNet, compose time.Duration
	var berthCPU, runNetCPU, runCPU, berthSelf, berthChildren time.Duration
	var berthKids, runNetKids, runKids time.Duration
	b.ResetTimer()
	for range b.N {
		// The like-for-like pair first and side by side, so the machine's
		// load drifts as little as possible between them.
		r := timeDockerRun(b, img, appNetworkArgs(b)...)
		runNet, runNetCPU, runNetKids = runNet+r.took, runNetCPU+r.dockerd, runNetKids+r.dockerdKids
		r = timeBerth(b, bin, dir, file)
		berth, berthRunning, berthCPU = berth+r.took, berthRunning+r.running, berthCPU+r.dockerd
		berthKids = berthKids + r.dockerdKids
		berthSelf, berthChildren = berthSelf+r.berth, berthChildren+r.children
		r = timeDockerRun(b, img)
		run, runCPU, runKids = run+r.took, runCPU+r.dockerd, runKids+r.dockerdKids
		compose += timeCompose(b, dir, "-f", file, "-f", bridge)
	}
	n := float64(b.N)
	b.ReportMetric(berth.Seconds()/n, "berth-s")
	b.ReportMetric(berthRunning.Seconds()/n, "berth-running-s")
	b.ReportMetric(run.Seconds()/n, "docker-run-s")
	b.ReportMetric(runNet.Seconds()/n, "docker-run-net-s")
	b.ReportMetric(compose.Seconds()/n, "compose-s")
	b.ReportMetric(berthCPU.Seconds()/n, "berth-dockerd-s")
	b.ReportMetric(runNetCPU.Seconds()/n, "docker-run-net-dockerd-s")
	b.ReportMetric(runCPU.Seconds()/n, "docker-run-dockerd-s")
	b.ReportMetric(berthKids.Seconds()/n, "berth-dockerd-children-s")
	b.ReportMetric(runNetKids.Seconds()/n, "docker-run-net-dockerd-children-s")
	b.ReportMetric(runKids.Seconds()/n, "docker-run-dockerd-children-s")
	b.ReportMetric(berthSelf.Seconds()/n, "berth-cpu-s")
	b.ReportMetric(berthChildren.Seconds()/n, "berth-children-cpu-s")
	b.ReportMetric(berthRunning.Seconds()/runNet.Seconds(), "berth-running/docker-run-net")
	b.ReportMetric(berth.Seconds()/run.Seconds(), "berth/docker-run")
	b.ReportMetric(berth.Seconds()/runNet.Seconds(), "berth/docker-run-net")
	b.ReportMetric(berth.Seconds()/compose.Seconds(), "berth/compose")
}

// appNetworkArgs makes a user-defined network and returns the docker run
// arguments that put a container on it with a service alias, as berth does
// for every replica (Compose semantics: the service name resolves to its
// replicas). Docker 20.10 serialises joins to such a network, so this is
// the like-for-like baseline for berth; plain docker run uses the default
// bridge, which has no service DNS. The network goes at cleanup, best
// effort (the engine may keep stale endpoints on it).
func appNetworkArgs(b *testing.B) []string {
	b.StopTimer()
	defer b.StartTimer()
	name := fmt.Sprintf("bench-run-net-%d", time.Now().UnixNano())
	if _, err := h.Docker("network", "create", "--label", benchLabel, name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = h.Docker("network", "rm", name) })
	return []string{"--network", name, "--network-alias", "app"}
}

// timing is one timed deploy: how long it took, when its last replica
// started (berth only), and the engine's CPU time meanwhile.
// The berth server's own CPU time and its children's (berth only) say how
// much of the two cores the deploy's path took from the engine.
// dockerdKids is the CPU time of the processes the engine ran meanwhile.
type timing struct{ took, running, dockerd, dockerdKids, berth, children time.Duration }

// timeBerth times `berth up` of the 100 replicas against a fresh dev
// server, then takes the app down (untimed).
func timeBerth(b *testing.B, bin, dir, file string) timing {
	const project = "bench-berth"
	b.StopTimer()
	h.CleanupDocker(b, project) // registered first: runs after the server stops
	c := h.StartCluster(b, bin)
	b.StartTimer()
	pid := strconv.Itoa(c.Pid())
	self, children := procCPU(b, pid)
	engine, start := meterEngine(b, "berth"), time.Now()
	c.MustRun(b, dir, "up", "-p", project, "-f", file, "--wait-timeout", "20m")
	r := timing{took: time.Since(start)}
	// berth's CPU before the engine's meter stops: that waits for the
	// engine's profile, and the idle server's time meanwhile is not the
	// deploy's.
	self2, children2 := procCPU(b, pid)
	r.berth, r.children = self2-self, children2-children
	r.dockerd, r.dockerdKids = engine()
	b.StopTimer()
	tasks, err := c.PS(b, project)
	if err != nil {
		b.Fatal(err)
	}
	up := h.Running(tasks, "app")
	if n := len(up); n != convergeReplicas {
		b.Fatalf("berth up returned with %d of %d replicas running: %s", n, convergeReplicas, h.Describe(tasks))
	}
	for _, t := range up {
		r.running = max(r.running, t.StartedAt.Sub(start))
	}
	c.MustRun(b, dir, "down", "--wait-timeout", "5m", "-p", project)
	c.Stop(b, syscall.SIGTERM) // idle, but not to share the CPU with the others
	h.RemoveLabelled(b, benchLabel)
	b.StartTimer()
	return r
}

// dockerdCPU is the CPU time (user + system) the engine on the default
// socket has used so far (its pid file says which dockerd: tests of other
// packages may run engines of their own), and that of the processes it
// ran and reaped: for every container on a user-defined network dockerd
// 20.10 re-executes itself into the container's namespace to set up its
// embedded DNS, and that process runs iptables 11 times (strace shows it;
// the default bridge has no embedded DNS and runs none of them).
func dockerdCPU(b *testing.B) (self, children time.Duration) {
	b.Helper()
	pid, err := os.ReadFile("/var/run/docker.pid")
	if err != nil {
		b.Fatalf("find the engine's process: %v", err)
	}
	return procCPU(b, strings.TrimSpace(string(pid)))
}

// meterEngine starts measuring the engine over one timed part named name:
// its CPU and its children's (dockerdCPU), and its profile when asked
// (dockerdProfile). The function it returns reads the CPU used since, then
// waits for the profile.
func meterEngine(b *testing.B, name string) (stop func() (dockerd, children time.Duration)) {
	self, kids := dockerdCPU(b)
	profiled := dockerdProfile(b, name)
	return func() (time.Duration, time.Duration) {
		self2, kids2 := dockerdCPU(b)
		profiled()
		return self2 - self, kids2 - kids
	}
}

// procCPU is the CPU time (user + system) process pid has used so far, and
// that of its children it has reaped (the iptables and ip commands an agent
// runs, say), from /proc/PID/stat in clock ticks of 1/100 s (USER_HZ).
func procCPU(b *testing.B, pid string) (self, children time.Duration) {
	b.Helper()
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime, stime, cutime and cstime are the 14th to 17th
	// of the line.
	rest := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(rest) < 15 {
		b.Fatalf("read the CPU time of process %s: short /proc stat %q", pid, stat)
	}
	var ticks [4]int64
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(rest[11+i], 10, 64); err != nil {
			b.Fatalf("read the CPU time of process %s from %q", pid, stat)
		}
	}
	tick := 10 * time.Millisecond
	return time.Duration(ticks[0]+ticks[1]) * tick, time.Duration(ticks[2]+ticks[3]) * tick
}

// timeDockerRun times 100 `docker run -d [extra...]`, 8 at a time, then
// removes the containers (untimed).
func timeDockerRun(b *testing.B, img string, extra ...string) timing {
	name := "docker-run"
	if len(extra) > 0 {
		name = "docker-run-net"
	}
	jobs := make(chan int)
	errs := make(chan error, convergeReplicas)
	var wg sync.WaitGroup
	engine, start := meterEngine(b, name), time.Now()
	for range dockerRunWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				args := append([]string{"run", "-d", "--label", benchLabel, "--name", "bench-run-" + strconv.Itoa(i)}, extra...)
				_, err := h.Docker(append(args, img)...)
				errs <- err
			}
		}()
	}
	for i := range convergeReplicas {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	r := timing{took: time.Since(start)}
	r.dockerd, r.dockerdKids = engine()
	close(errs)
	b.StopTimer()
	defer b.StartTimer()
	for err := range errs {
		if err != nil {
			h.RemoveLabelled(b, benchLabel)
			b.Fatal(err)
		}
	}
	h.RemoveLabelled(b, benchLabel)
	return r
}

// timeCompose times docker-compose v1 bringing up the compose files (-f
// arguments) scaled to 100, then takes them down (untimed).
func timeCompose(b *testing.B, dir string, files ...string) time.Duration {
	project := append([]string{"-p", "bench-compose-v1"}, files...)
	start := time.Now()
	if err := dockerCompose(dir, append(project, "up", "-d", "--scale", fmt.Sprintf("app=%d", convergeReplicas))...); err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.StopTimer()
	defer b.StartTimer()
	if err := dockerCompose(dir, append(project, "down", "-v")...); err != nil {
		b.Error(err)
	}
	h.RemoveLabelled(b, benchLabel)
	return took
}

func dockerCompose(dir string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-compose", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker-compose %v: %w\n%s", args, err, out)
	}
	return nil
}

func renderCompose(img string, replicas int) string {
	return strings.NewReplacer("{{image}}", img, "{{replicas}}", strconv.Itoa(replicas)).Replace(convergeCompose)
}

// buildBerth builds the berth binary of this checkout for the benchmark.
func buildBerth(b *testing.B) string {
	b.Helper()
	root, err := h.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "berth")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := h.BuildBerth(ctx, root, bin); err != nil {
		b.Fatal(err)
	}
	return bin
}
