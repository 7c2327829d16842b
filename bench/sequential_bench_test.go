package bench

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/cluster/harness"
)

var (
	seqServices = flag.Int("seq-services", 300, "BenchmarkSequentialServices: apps of one service deployed one after another")
	seqNodes    = flag.Int("seq-nodes", 20, "BenchmarkSequentialServices: simulated nodes")
)

// BenchmarkSequentialServices deploys -seq-services apps of one sim
// service (3 replicas each) one after another on three managers and a
// `berth sim` of -seq-nodes nodes, each with `berth up -d` as a user
// would, and times each from the command's start until its replicas run.
// Swarm slows as services accumulate (moby/moby#30820); the figure is the
// last ten deploys' median against the first ten's.
//
//	go test -run '^$' -bench SequentialServices -benchtime 1x -timeout 30m ./bench/
func BenchmarkSequentialServices(b *testing.B) {
	n := *seqServices
	bin := buildBerth(b)
	for range b.N {
		b.StopTimer()
		// The default pool holds 256 networks (each app has its own
		// default network, a /20 that may grow to a /13): more apps than
		// that need a larger pool, as a cluster with that many would.
		c := harness.Start(b, bin, bin, harness.Options{ServerArgs: []string{"--address-pool", "10.0.0.0/9"}})
		leader := c.Leader(b, 30*time.Second)
		token := c.Token(b, leader, "worker")
		sim := c.StartSim(b, leader, token, "seq", *seqNodes, "--cpus", "64", "--memory", "64GiB", "--log-level", "error")
		harness.WaitFor(b, 5*time.Minute, "every simulated node ready", c.ExpectNodesReady(leader, *seqNodes))
		took, upTook := make([]time.Duration, n), make([]time.Duration, n)
		b.StartTimer()
		// The managers' CPU over the first and the last fifty deploys:
		// unlike the times, it does not move with the machine's load.
		window := min(50, n/2)
		var cpuMarks [4]time.Duration
		managersCPU := func() time.Duration {
			var sum time.Duration
			for _, d := range cpuOf(b, c, sim)[:len(c.Managers)] {
				sum += d
			}
			return sum
		}
		for i := range n {
			switch i {
			case 0:
				cpuMarks[0] = managersCPU()
			case window:
				cpuMarks[1] = managersCPU()
			case n - window:
				cpuMarks[2] = managersCPU()
			}
			name := fmt.Sprintf("seq%03d", i)
			file := filepath.Join(c.Dir(), name+".yaml")
			app := fmt.Sprintf("name: %s\nservices:\n  web:\n    x-berth-driver: sim\n    deploy:\n      replicas: 3\n", name)
			if err := os.WriteFile(file, []byte(app), 0o644); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			c.MustRun(b, leader, "up", "-d", "-f", file)
			upTook[i] = time.Since(start)
			waitEvery(b, 2*time.Minute, 10*time.Millisecond, name+" running", func() error {
				tasks, err := c.Tasks(leader, name)
				if err != nil {
					return err
				}
				if n := len(harness.Running(tasks, "web")); n != 3 {
					return fmt.Errorf("%d of 3 running", n)
				}
				return nil
			})
			took[i] = time.Since(start)
		}
		b.StopTimer()
		cpuMarks[3] = managersCPU()
		cpuFirst := (cpuMarks[1] - cpuMarks[0]) / time.Duration(max(1, window))
		cpuLast := (cpuMarks[3] - cpuMarks[2]) / time.Duration(max(1, window))
		b.ReportMetric(cpuFirst.Seconds()*1000, "managers-cpu-ms/deploy-first")
		b.ReportMetric(cpuLast.Seconds()*1000, "managers-cpu-ms/deploy-last")
		first, last := median(took[:min(10, n)]), median(took[max(0, n-10):])
		b.ReportMetric(first.Seconds()*1000, "first10-median-ms")
		b.ReportMetric(last.Seconds()*1000, "last10-median-ms")
		b.ReportMetric(last.Seconds()/first.Seconds(), "last/first")
		b.ReportMetric(median(took).Seconds()*1000, "all-median-ms")
		upFirst, upLast := median(upTook[:min(10, n)]), median(upTook[max(0, n-10):])
		b.ReportMetric(upFirst.Seconds()*1000, "up-first10-median-ms")
		b.ReportMetric(upLast.Seconds()*1000, "up-last10-median-ms")
		b.Logf("%d apps one after another: first ten %s (median; berth up -d itself %s), last ten %s (%s), all %s; slowest %s",
			n, first.Round(time.Millisecond), upFirst.Round(time.Millisecond), last.Round(time.Millisecond), upLast.Round(time.Millisecond),
			median(took).Round(time.Millisecond), slices.Max(took).Round(time.Millisecond))
		b.Logf("the three managers' CPU per deploy: %s over the first %d, %s over the last %d",
			cpuFirst.Round(100*time.Microsecond), window, cpuLast.Round(100*time.Microsecond), window)
		b.StartTimer()
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
