package hosts

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testimage"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// The network figures of docs/benchmarks.md (issue 17's 1 and 2),
// measured in one run on one cluster of 1 manager and 3 agent hosts:
//
//	sudo BERTH_HOSTS_FIGURES=1 go test -count=1 -v -timeout 20m -run TestNetworkFigures ./test/hosts/
//
// 1. Through the mesh versus straight to the replica, from a1's host (the
// test app's client run in a1's network namespace) to the one replica, on
// a2: one TCP stream's bytes/s, and round-trip latency p50/p99 at a fixed
// rate below saturation. Mesh: a1's own address and the published port
// (a1's proxy relays over the overlay). Direct: the replica's overlay
// address (the same overlay, no proxy).
// 2. Container to container across hosts over the overlay (a client
// container on a1 to the replica on a2) versus host to host (the same
// program as a sink in a2's namespace, its client in a1's).
//
// A measurement: a missed target is logged, not failed; what must hold
// for a figure to mean anything (every byte acknowledged) fails the test.
const (
	figSinkPort  = 5001
	figEchoPort  = 5002
	figPubSink   = 15001
	figPubEcho   = 15002
	figHostSink  = 25001
	figHostEcho  = 25002
	figRuns      = 3
	figStream    = "4s"
	figRate      = "2000" // round trips per second: far below what one connection does here
	figRoundTrip = "8000"
)

func figCompose(img string) string {
	return fmt.Sprintf(`services:
  sink:
    image: %[1]s
    environment: {SINK_PORT: "%[2]d", ECHO_PORT: "%[3]d"}
    healthcheck: {test: ["CMD", "/app", "healthcheck"], interval: 1s, timeout: 5s, retries: 2}
    ports: ["%[4]d:%[2]d", "%[5]d:%[3]d"]
    deploy: {placement: {constraints: [node.hostname==a2]}}
  client:
    image: %[1]s
    healthcheck: {test: ["CMD", "/app", "healthcheck"], interval: 1s, timeout: 5s, retries: 2}
    deploy: {placement: {constraints: [node.hostname==a1]}}
`, img, figSinkPort, figEchoPort, figPubSink, figPubEcho)
}

func TestNetworkFigures(t *testing.T) {
	if os.Getenv(figuresEnv) != "1" {
		t.Skipf("the network figures of docs/benchmarks.md take minutes: set %s=1 to measure them", figuresEnv)
	}
	needHosts(t)
	img := h.TestImage(t)
	bin, err := testimage.AppBinary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("machine: %d cores, load average %s at the start", numCPU(), loadavg())
	n := newNetCluster(t, "bg")
	n.up(t, "fig", figCompose(img))
	key := "fig_default"
	h.WaitFor(t, time.Minute, "the sink on a2", n.serving("fig", "sink", 1, key, "a2"))
	h.WaitFor(t, time.Minute, "the client on a1", n.serving("fig", "client", 1, key, "a1"))
	sink, client := n.tasks(t, "fig", "sink")[0], n.tasks(t, "fig", "client")[0]
	replica := sink.Addresses[key]
	n.hostApp(t, bin, "a2", "SINK_PORT="+strconv.Itoa(figHostSink), "ECHO_PORT="+strconv.Itoa(figHostEcho))
	mesh := func(port int) string { return net.JoinHostPort(n.addrs["a1"], strconv.Itoa(port)) }
	direct := func(port int) string { return net.JoinHostPort(replica, strconv.Itoa(port)) }

	fromA1 := func(args ...string) func(v any) error {
		return func(v any) error { return n.hostRun(bin, "a1", v, args...) }
	}
	fromClient := func(args ...string) func(v any) error {
		return func(v any) error { return n.run(client, 2*time.Minute, v, args...) }
	}
	// Alternate the two sides of each figure run by run, so neither has
	// the machine's quieter moments to itself.
	throughput(t, "mesh vs direct, one TCP stream from a1's host to the replica on a2", 0.9,
		fromA1("send", mesh(figPubSink), "-d", figStream), fromA1("send", direct(figSinkPort), "-d", figStream))
	latency(t, "mesh vs direct, round trips of 64 bytes at "+figRate+"/s from a1's host to the replica on a2",
		fromA1("rr", mesh(figPubEcho), "-rate", figRate, "-n", figRoundTrip), fromA1("rr", direct(figEchoPort), "-rate", figRate, "-n", figRoundTrip))
	throughput(t, "container to container across hosts over the overlay vs host to host, one TCP stream a1 -> a2", 0.85,
		fromClient("send", direct(figSinkPort), "-d", figStream), fromA1("send", net.JoinHostPort(n.addrs["a2"], strconv.Itoa(figHostSink)), "-d", figStream))
	latency(t, "container to container over the overlay vs host to host, round trips of 64 bytes at "+figRate+"/s a1 -> a2",
		fromClient("rr", direct(figEchoPort), "-rate", figRate, "-n", figRoundTrip), fromA1("rr", net.JoinHostPort(n.addrs["a2"], strconv.Itoa(figHostEcho)), "-rate", figRate, "-n", figRoundTrip))
	t.Logf("load average %s at the end", loadavg())
}

type sendFigure struct {
	Bytes int64   `json:"bytes"`
	Acked int64   `json:"acked"`
	Secs  float64 `json:"secs"`
	MBps  float64 `json:"mbps"`
}

type rrFigure struct {
	Count  int     `json:"count"`
	Rate   float64 `json:"rate"`
	P50    float64 `json:"p50_us"`
	P90    float64 `json:"p90_us"`
	P99    float64 `json:"p99_us"`
	Max    float64 `json:"max_us"`
	Missed int     `json:"missed"`
}

// throughput runs a and b figRuns times each, alternating, and logs the
// best of each (the run the machine disturbed least) and their ratio.
func throughput(t *testing.T, what string, target float64, a, b func(v any) error) {
	t.Helper()
	var best [2]float64
	var runs [2][]string
	for i := range figRuns {
		for _, j := range alternate(i) {
			f := [2]func(v any) error{a, b}[j]
			var r sendFigure
			if err := f(&r); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if r.Acked != r.Bytes || r.Bytes == 0 {
				t.Fatalf("%s: sent %d bytes, the sink read %d", what, r.Bytes, r.Acked)
			}
			best[j] = max(best[j], r.MBps)
			runs[j] = append(runs[j], fmt.Sprintf("%.0f", r.MBps))
		}
	}
	ratio := best[0] / best[1]
	verdict := "met"
	if ratio < target {
		verdict = "MISSED"
	}
	t.Logf("FIGURE %s: %.0f MB/s vs %.0f MB/s (best of %d; runs %s vs %s): %.2fx (target >= %.2fx: %s; load %s)",
		what, best[0], best[1], figRuns, strings.Join(runs[0], ", "), strings.Join(runs[1], ", "), ratio, target, verdict, loadavg())
}

// latency runs a and b figRuns times each, alternating, and logs the
// median run of each by p50, with the added p50 and p99.
func latency(t *testing.T, what string, a, b func(v any) error) {
	t.Helper()
	var res [2][]rrFigure
	for i := range figRuns {
		for _, j := range alternate(i) {
			f := [2]func(v any) error{a, b}[j]
			var r rrFigure
			if err := f(&r); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			res[j] = append(res[j], r)
		}
	}
	med := func(rs []rrFigure) rrFigure {
		s := slices.Clone(rs)
		slices.SortFunc(s, func(x, y rrFigure) int { return cmp.Compare(x.P50, y.P50) })
		return s[len(s)/2]
	}
	m, d := med(res[0]), med(res[1])
	added := m.P50 - d.P50
	verdict := "met"
	if added > 100 {
		verdict = "MISSED"
	}
	t.Logf("FIGURE %s (median run of %d): p50 %.0f vs %.0f µs, p99 %.0f vs %.0f µs, max %.0f vs %.0f µs, at %.0f and %.0f/s: "+
		"+%.0f µs at p50 (target <= 100 µs: %s), +%.0f µs at p99 (load %s)",
		what, figRuns, m.P50, d.P50, m.P99, d.P99, m.Max, d.Max, m.Rate, d.Rate, added, verdict, m.P99-d.P99, loadavg())
}

// alternate is the order of the two sides in run i.
func alternate(i int) [2]int {
	if i%2 == 1 {
		return [2]int{1, 0}
	}
	return [2]int{0, 1}
}

// hostApp runs the test app in a host's own network namespace (not in a
// container) until the test ends, and waits for its sink to answer.
func (n *netCluster) hostApp(t *testing.T, bin, host string, env ...string) {
	t.Helper()
	cmd := exec.Command("nsenter", "--net="+n.netns(host), "--", bin)
	cmd.Env = append(append(os.Environ(), "PORT=28080"), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort(n.addrs[host], strconv.Itoa(figHostSink))
	h.WaitFor(t, 20*time.Second, "the app on "+host+"'s host", func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// hostRun runs an app client in a host's network namespace and decodes
// its JSON line into v.
func (n *netCluster) hostRun(bin, host string, v any, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.netns(host), "--", bin}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("app %s on %s's host: %w: %s", strings.Join(args, " "), host, err, out)
	}
	if err := json.Unmarshal([]byte(lastLine(string(out))), v); err != nil {
		return fmt.Errorf("app %s on %s's host: %w: %s", strings.Join(args, " "), host, err, out)
	}
	return nil
}
