package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/supervise"
	"github.com/berth-dev/berth/internal/testimage"
)

// needRoot skips a test that makes namespaces, links and engines when it
// cannot: CI runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the local driver makes network namespaces, links and iptables rules: run this test as root")
	}
	for _, bin := range []string{"ip", "iptables", "nsenter", "dockerd", "docker"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("the local driver needs %s on PATH", bin)
		}
	}
}

// buildBerth builds the berth binary the hosts run.
func buildBerth(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "berth")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/berth-dev/berth/cmd/berth").CombinedOutput()
	if err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	return bin
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// footprint is what the machine has that a host could leave behind.
type footprint struct {
	netns, links, mounts, procs, files []string
	rules                              string
}

// snapshot lists what the machine has of cluster's hosts. Only the names
// this driver gives them: other tests (and berth clusters) on the machine
// make and remove namespaces and links of their own meanwhile.
func snapshot(t *testing.T, d *Driver, cluster string) footprint {
	t.Helper()
	root := d.cfg.Root
	var f footprint
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "berth-"+cluster+"-") {
			f.netns = append(f.netns, e.Name())
		}
	}
	ours := map[string]bool{d.bridgeName(cluster): true}
	for _, n := range []string{"m1", "m2", "a1", "a2"} {
		v := d.vethName(cluster, n)
		ours[v], ours["vp"+v[2:]] = true, true
	}
	links, _ := os.ReadDir("/sys/class/net")
	for _, e := range links {
		if ours[e.Name()] {
			f.links = append(f.links, e.Name())
		}
	}
	f.mounts = MountsUnder(root)
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(b, []byte(root)) {
			f.procs = append(f.procs, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	_ = filepath.Walk(root, func(path string, _ os.FileInfo, _ error) error {
		if path != root {
			f.files = append(f.files, path)
		}
		return nil
	})
	for _, table := range []string{"filter", "nat"} {
		out, _ := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, ruleComment(d.bridgeName(cluster))) {
				f.rules += l + "\n"
			}
		}
	}
	return f
}

func rssKB(t *testing.T, pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("read /proc/%d/status: %v", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

func childPid(t *testing.T, pidfile string) int {
	t.Helper()
	pid := supervise.ReadPid(supervise.ChildPidfile(pidfile), "")
	if pid == 0 {
		t.Fatalf("no command running under the supervisor of %s", pidfile)
	}
	return pid
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := waitFor(context.Background(), timeout, what, cond); err != nil {
		t.Fatal(err)
	}
}

func adminClient(h *machine.Host) *api.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(h.CACert)
	return api.NewClient(hostPort(h.Address, machine.APIPort),
		api.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), api.WithToken(h.AdminToken),
		api.WithTimeouts(3*time.Second, 0))
}

func execOut(t *testing.T, d *Driver, h *machine.Host, cmd ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := d.Exec(context.Background(), h, cmd, machine.Stdio{Out: &out, Err: &out})
	if err != nil {
		t.Fatalf("exec %v in %s: %v", cmd, h.Name, err)
	}
	return code, out.String()
}

// TestLocalCluster makes a manager and two agent hosts, proves they are
// hosts (own addresses, own engines, published ports, reachable from each
// other, supervised), and that Remove leaves nothing behind.
func TestLocalCluster(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	image, err := testimage.Ensure(ctx)
	if err != nil {
		t.Fatalf("test image: %v", err)
	}
	bin := buildBerth(t)
	root := filepath.Join(t.TempDir(), "m")
	cluster := "t" + randHex(3)
	d, err := New(Config{Root: root, Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, d, cluster)
	var mu sync.Mutex
	var hosts []*machine.Host
	create := func(spec machine.Spec) (*machine.Host, time.Duration) {
		spec.Cluster = cluster
		t.Cleanup(func() { removeByName(d, cluster, spec.Name, spec.Role) })
		start := time.Now()
		var steps []string
		last, lastStep := start, ""
		h, err := d.Create(ctx, spec, func(host, step string) {
			if lastStep != "" {
				steps = append(steps, fmt.Sprintf("%s %.2fs", lastStep, time.Since(last).Seconds()))
			}
			last, lastStep = time.Now(), step
		})
		steps = append(steps, fmt.Sprintf("%s %.2fs", lastStep, time.Since(last).Seconds()))
		t.Logf("FIGURE %s steps: %s", spec.Name, strings.Join(steps, ", "))
		if err != nil {
			t.Errorf("create %s: %v", spec.Name, err)
			return nil, 0
		}
		mu.Lock()
		hosts = append(hosts, h)
		mu.Unlock()
		return h, time.Since(start)
	}

	m1, took := create(machine.Spec{Name: "m1", Role: machine.RoleManager})
	if m1 == nil {
		t.FailNow()
	}
	t.Logf("FIGURE manager host created in %.2fs", took.Seconds())
	if !strings.HasPrefix(m1.AdminToken, "BERTHADM-") || len(m1.CACert) == 0 {
		t.Fatalf("first manager came back without its admin token or CA: token %q, %d bytes of CA", m1.AdminToken, len(m1.CACert))
	}
	if _, err := os.Stat(d.paths(cluster, "m1").adminToken()); !os.IsNotExist(err) {
		t.Errorf("the admin token file is still on disk: %v", err)
	}
	if b, _ := os.ReadFile(d.paths(cluster, "m1").berthLog()); bytes.Contains(b, []byte(m1.AdminToken)) {
		t.Error("the admin token is in the manager's log")
	}
	mc := adminClient(m1)
	st, err := mc.Status(ctx)
	if err != nil || st.NodeName != "m1" {
		t.Fatalf("the manager's API at its address: %+v, %v", st, err)
	}
	tokens, err := mc.Tokens(ctx)
	if err != nil {
		t.Fatalf("worker token: %v", err)
	}

	// BERTH_TEST_MACHINE_IMAGES adds images to copy (to measure, e.g.
	// debian:bookworm-slim, which berth cluster create copies).
	images := append([]string{image}, strings.Fields(os.Getenv("BERTH_TEST_MACHINE_IMAGES"))...)
	join := machine.Join{Addr: hostPort(m1.Address, machine.ClusterPort), Token: tokens.Worker}
	agents := make([]*machine.Host, 2)
	var m2 *machine.Host
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var took time.Duration
		m2, took = create(machine.Spec{Name: "m2", Role: machine.RoleManager,
			Join: machine.Join{Addr: join.Addr, Token: tokens.Manager}})
		if m2 != nil {
			t.Logf("FIGURE joining manager host created in %.2fs, in parallel with the agents", took.Seconds())
		}
	}()
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, took := create(machine.Spec{Name: fmt.Sprintf("a%d", i+1), Role: machine.RoleAgent, Join: join,
				Labels: map[string]string{"zone": strconv.Itoa(i)}, Images: images})
			agents[i] = h
			if h != nil {
				t.Logf("FIGURE agent host %s created (engine ready, image copied, registered) in %.2fs, in parallel with the other", h.Name, took.Seconds())
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	a1, a2 := agents[0], agents[1]
	if m2.AdminToken != "" || m2.CACert != nil {
		t.Error("a joining manager came back with an admin token or CA: only the first has them")
	}
	if a1.Address == a2.Address || a1.Address == m1.Address {
		t.Fatalf("hosts share an address: %s %s %s", m1.Address, a1.Address, a2.Address)
	}
	eventually(t, 20*time.Second, "the manager to list both agents and the second manager", func() error {
		nodes, err := mc.ListNodes(ctx)
		if err != nil {
			return err
		}
		var names []string
		for _, n := range nodes {
			names = append(names, n.Name)
		}
		if !slices.Contains(names, "a1") || !slices.Contains(names, "a2") {
			return fmt.Errorf("nodes %v", names)
		}
		return nil
	})
	eventually(t, 20*time.Second, "m2 to be a voting member", func() error {
		ms, err := mc.Members(ctx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == "m2" && m.Voter {
				return nil
			}
		}
		return fmt.Errorf("members %+v", ms)
	})

	var cid string
	t.Run("published port answers on the agent's address", func(t *testing.T) {
		code, out := execOut(t, d, a1, "docker", "run", "-d", "-p", "18080:8080", "-e", "MESSAGE=hi", image)
		if code != 0 {
			t.Fatalf("docker run in a1: %d %s", code, out)
		}
		cid = strings.TrimSpace(out)
		url := "http://" + hostPort(a1.Address, 18080) + "/"
		eventually(t, 20*time.Second, url, func() error {
			resp, err := http.Get(url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(string(b), "hi") {
				return fmt.Errorf("%s %q", resp.Status, b)
			}
			return nil
		})
		// The machine's engine does not have it: the host's engine is its own.
		if out, _ := exec.Command("docker", "ps", "-q", "--filter", "publish=18080").Output(); len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("the container runs in the machine's engine: %s", out)
		}
		// Host to host over the bridge: a2 fetches from a1's published port.
		req := fmt.Sprintf(`exec 3<>/dev/tcp/%s/18080 && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && cat <&3`, a1.Address)
		if code, out := execOut(t, d, a2, "bash", "-c", req); code != 0 || !strings.Contains(out, "200 OK") {
			t.Errorf("a2 reaching a1's published port: %d %q", code, out)
		}
		if code, out := execOut(t, d, a2, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", m1.Address, machine.APIPort)); code != 0 {
			t.Errorf("a2 reaching the manager's API: %d %q", code, out)
		}
	})

	t.Run("memory", func(t *testing.T) {
		p := d.paths(cluster, "a1")
		containerd := supervise.ReadPid(filepath.Join(p.engineExec(), "containerd", "containerd.pid"), "containerd")
		t.Logf("FIGURE RSS: host dockerd %d kB + its containerd %d kB, agent %d kB, manager %d kB, supervisor %d kB",
			rssKB(t, childPid(t, p.engineSupPid())), rssKB(t, containerd), rssKB(t, childPid(t, p.berthPid())),
			rssKB(t, childPid(t, d.paths(cluster, "m1").berthPid())), rssKB(t, supervise.ReadPid(p.berthPid(), "machine-supervise")))
	})

	t.Run("supervisor restarts a killed berth", func(t *testing.T) {
		for _, h := range []*machine.Host{a1, m1, m2} {
			pidfile := d.paths(cluster, h.Name).berthPid()
			old := childPid(t, pidfile)
			if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, h.Name+"'s berth to run again", func() error {
				if pid := supervise.ReadPid(supervise.ChildPidfile(pidfile), ""); pid == 0 || pid == old {
					return fmt.Errorf("not restarted (pid %d)", pid)
				}
				return nil
			})
		}
		eventually(t, 20*time.Second, "the restarted manager's API", func() error { _, err := mc.Status(ctx); return err })
		eventually(t, 20*time.Second, "the restarted agent to register again", func() error {
			if b, _ := os.ReadFile(d.paths(cluster, "a1").berthLog()); bytes.Count(b, []byte("agent registered")) < 2 {
				return fmt.Errorf("log:\n%s", b)
			}
			return nil
		})
		eventually(t, 20*time.Second, "the restarted second manager's API", func() error {
			return d.status(ctx, m2, m1.CACert)
		})
	})

	t.Run("stop and start", func(t *testing.T) {
		registered := func() int {
			b, _ := os.ReadFile(d.paths(cluster, "a2").berthLog())
			return bytes.Count(b, []byte("agent registered"))
		}
		before := registered()
		if err := d.Stop(ctx, a2); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.Status(ctx, a2); st != machine.StateStopped {
			t.Fatalf("after Stop: %s", st)
		}
		if err := pingEngine(ctx, d.paths(cluster, "a2").engineSock()); err == nil {
			t.Error("the engine answers after Stop")
		}
		if err := d.Start(ctx, a2); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.Status(ctx, a2); st != machine.StateRunning {
			t.Fatalf("after Start: %s", st)
		}
		eventually(t, 20*time.Second, "a2 to register again", func() error {
			if n := registered(); n <= before {
				b, _ := os.ReadFile(d.paths(cluster, "a2").berthLog())
				return fmt.Errorf("registered %d times; log ends:\n%s", n, b[max(0, len(b)-2000):])
			}
			return nil
		})
		// One of two managers: the cluster has no quorum until it is back.
		if err := d.Stop(ctx, m2); err != nil {
			t.Fatal(err)
		}
		if st, _ := d.Status(ctx, m2); st != machine.StateStopped {
			t.Fatalf("m2 after Stop: %s", st)
		}
		if err := d.Start(ctx, m2); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "m2's API after Start", func() error { return d.status(ctx, m2, m1.CACert) })
		eventually(t, 20*time.Second, "m2 a reachable member again", func() error {
			ms, err := mc.Members(ctx)
			if err != nil {
				return err
			}
			for _, m := range ms {
				if m.Name == "m2" && m.Reachable {
					return nil
				}
			}
			return fmt.Errorf("members %+v", ms)
		})
	})

	// a1's engine dies hard (no supervisor to restart it, no graceful
	// stop of its containers): Remove must still kill the container.
	p1 := d.paths(cluster, "a1")
	sup, engine := supervise.ReadPid(p1.engineSupPid(), "machine-supervise"), childPid(t, p1.engineSupPid())
	_ = syscall.Kill(sup, syscall.SIGSTOP)
	_ = syscall.Kill(engine, syscall.SIGKILL)
	_ = syscall.Kill(sup, syscall.SIGKILL)
	if cid == "" || len(pidsOfContainers([]string{cid})) == 0 {
		t.Fatalf("container %q of a1 does not run after its engine died", cid)
	}

	var rm sync.WaitGroup
	for _, h := range hosts {
		rm.Add(1)
		go func() {
			defer rm.Done()
			if err := d.Remove(ctx, h, false); err != nil {
				t.Errorf("remove %s: %v", h.Name, err)
			}
		}()
	}
	rm.Wait()
	footprintEqual(t, before, snapshot(t, d, cluster))
	if pids := pidsOfContainers([]string{cid}); len(pids) > 0 {
		t.Errorf("the container of a1 runs on after Remove: %v", pids)
	}
	if st, _ := d.Status(ctx, a1); st != machine.StateMissing {
		t.Errorf("a removed host is %s", st)
	}
}

// footprintEqual fails t for whatever after has that before had not.
func footprintEqual(t *testing.T, before, after footprint) {
	t.Helper()
	for _, c := range []struct {
		what          string
		before, after []string
	}{
		{"namespaces", before.netns, after.netns}, {"links", before.links, after.links},
		{"mounts", before.mounts, after.mounts}, {"processes", before.procs, after.procs}, {"files", before.files, after.files},
	} {
		if !slices.Equal(c.before, c.after) {
			t.Errorf("%s before %v, after (%d) %v", c.what, c.before, len(c.after), c.after[:min(len(c.after), 8)])
		}
	}
	if after.rules != before.rules {
		t.Errorf("iptables rules left: %s", after.rules)
	}
}

// removeByName removes whatever a test's host left, even when Create
// failed and returned no Host.
func removeByName(d *Driver, cluster, name string, role machine.Role) {
	h := &machine.Host{Name: name, Cluster: cluster, Role: role, Local: map[string]string{keyDir: d.paths(cluster, name).dir}}
	_ = d.Remove(context.Background(), h, true)
}

// TestCreateFailureLeavesNothing: an agent host whose berth cannot join
// (no manager at the address) fails at its last step, after the bridge,
// namespace and engine were made; Create must undo all of it.
func TestCreateFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin := buildBerth(t)
	root := filepath.Join(t.TempDir(), "m")
	cluster := "f" + randHex(3)
	d, err := New(Config{Root: root, Binary: bin, ReadyTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeByName(d, cluster, "a1", machine.RoleAgent) })
	subnet, err := d.pickSubnet("")
	if err != nil {
		t.Fatal(err)
	}
	nobody := hostPort(subnet.Addr().Next().Next().Next().Next().String(), machine.ClusterPort)
	before := snapshot(t, d, cluster)
	var steps []string
	_, err = d.Create(ctx, machine.Spec{Name: "a1", Cluster: cluster, Role: machine.RoleAgent,
		Join: machine.Join{Addr: nobody, Token: "BERTH-1-x-w-y"}, Options: map[string]string{OptSubnet: subnet.String()}},
		func(_, step string) { steps = append(steps, step) })
	if err == nil || !strings.Contains(err.Error(), "wait for berth") {
		t.Fatalf("Create of an agent with no manager: %v (steps %v)", err, steps)
	}
	footprintEqual(t, before, snapshot(t, d, cluster))
}
