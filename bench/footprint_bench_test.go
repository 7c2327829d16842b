package bench

import (
	"context"
	"fmt"
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
	"github.com/berth-dev/berth/internal/pki"
)

// BenchmarkIdleFootprint starts a real manager and a real agent (joined
// with a worker token, docker and exec drivers), lets them idle, and
// reports each process's resident memory (VmRSS), split into RssAnon
// (heap, stacks, runtime metadata: what the process allocated) and
// RssFile (pages of the binary and other mapped files it touched), so a
// change can be told apart as less allocation or less code run. Targets
// (issue 20): manager < 30 MB, agent < 20 MB; docs/benchmarks.md "Idle
// footprint".
//
//	go test -run '^$' -bench IdleFootprint -benchtime 2x ./bench/
func BenchmarkIdleFootprint(b *testing.B) {
	bin := buildBerth(b)
	for i := range b.N {
		// Each round on addresses of its own: the processes of earlier
		// rounds stop only at the end of the benchmark.
		host, agentHost := fmt.Sprintf("127.0.4.%d", i%250+1), fmt.Sprintf("127.0.5.%d", i%250+1)
		dir := b.TempDir()
		outPath := filepath.Join(dir, "m.out")
		mgr := startProc(b, bin, outPath, "server", "--addr", host+":7700", "--data-dir", filepath.Join(dir, "m"))
		// The new cluster prints its admin token once; every API call needs it.
		var admin string
		waitUntil(b, 20*time.Second, "the admin token", func() bool {
			out, _ := os.ReadFile(outPath)
			for _, f := range strings.Fields(string(out)) {
				if pki.IsAdminToken(f) {
					admin = f
				}
			}
			return admin != ""
		})
		c := api.NewClient("http://"+host+":7700", api.WithToken(admin))
		waitUntil(b, 20*time.Second, "the manager leads", func() bool {
			st, err := c.Status(context.Background())
			return err == nil && st.Leader
		})
		var token string
		waitUntil(b, 20*time.Second, "a worker token", func() bool {
			cmd := exec.Command(bin, "--addr", "http://"+host+":7700", "token", "worker", "-q")
			cmd.Env = append(os.Environ(), "BERTH_TOKEN="+admin)
			out, err := cmd.Output()
			token = strings.TrimSpace(string(out))
			return err == nil && token != ""
		})
		// The agent's registry endpoint listens on 127.0.0.1, one port per
		// host: each round's agent needs its own, as the earlier rounds'
		// still run (with the default port the second agent exits).
		agent := startProc(b, bin, "", "agent", "--join", host+":7702", "--token", token,
			"--data-dir", filepath.Join(dir, "a"), "--listen", agentHost+":7710",
			"--registry-port", strconv.Itoa(17703+i%250))
		waitUntil(b, 20*time.Second, "the agent registered", func() bool {
			ns, err := c.ListNodes(context.Background())
			return err == nil && len(ns) == 1
		})
		b.StopTimer()
		time.Sleep(10 * time.Second) // idle is the point: this is what is measured, not a synchronisation
		b.StartTimer()
		for _, p := range []struct {
			name string
			cmd  *exec.Cmd
		}{{"manager", mgr}, {"agent", agent}} {
			st := procStatusMB(b, p.cmd)
			b.ReportMetric(st["VmRSS"], p.name+"-MB")
			b.ReportMetric(st["RssAnon"], p.name+"-anon-MB")
			b.ReportMetric(st["RssFile"], p.name+"-file-MB")
		}
	}
}

// startProc starts bin with args, its stdout into the file stdout when
// given, and stops it at the end of the benchmark.
func startProc(b *testing.B, bin, stdout string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if stdout != "" {
		f, err := os.Create(stdout)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close() // the child keeps its own descriptor
		cmd.Stdout = f
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	return cmd
}

// procStatusMB reads VmRSS, RssAnon and RssFile of cmd's process from
// /proc/PID/status, in MB (the kernel reports kB).
func procStatusMB(b *testing.B, cmd *exec.Cmd) map[string]float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	want := []string{"VmRSS", "RssAnon", "RssFile"}
	got := make(map[string]float64, len(want))
	for _, line := range strings.Split(string(data), "\n") {
		key, rest, ok := strings.Cut(line, ":")
		if !ok || !slices.Contains(want, key) {
			continue
		}
		kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
		if err != nil {
			b.Fatalf("%s in /proc/%d/status: %v", key, cmd.Process.Pid, err)
		}
		got[key] = float64(kb) / 1024
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			b.Fatalf("no %s in /proc/%d/status", k, cmd.Process.Pid)
		}
	}
	return got
}

func waitUntil(b *testing.B, d time.Duration, what string, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
