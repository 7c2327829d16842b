package local

import (
	"bytes"
	"context"
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

// cluster is a test cluster of local hosts: m1 (first manager), m2 (a
// joined manager), a1 and a2 (agents), made in parallel after m1.
type cluster struct {
	d              *Driver
	ctx            context.Context
	name, image    string
	m1, m2, a1, a2 *machine.Host
	mc             *api.Client
	before         footprint
	mu             sync.Mutex
	hosts          []*machine.Host
	cid            string // the container a1 runs
}

// TestLocalCluster makes a manager, a joining manager and two agent hosts,
// proves they are hosts (own addresses, own engines, published ports,
// reachable from each other, supervised), and that Remove leaves nothing.
func TestLocalCluster(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	c := newCluster(t, ctx)
	t.Run("published port answers on the agent's address", c.publishedPort)
	t.Run("memory", c.memory)
	t.Run("supervisor restarts a killed berth and engine", c.restarts)
	t.Run("stop and start", c.stopStart)
	c.removeAll(t)
}

func newCluster(t *testing.T, ctx context.Context) *cluster {
	image, err := testimage.Ensure(ctx)
	if err != nil {
		t.Fatalf("test image: %v", err)
	}
	d, err := New(Config{Root: filepath.Join(t.TempDir(), "m"), Binary: buildBerth(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{d: d, ctx: ctx, name: "t" + randHex(3), image: image}
	c.before = snapshot(t, d, c.name)
	c.makeFirstManager(t)
	c.makeOthers(t)
	return c
}

// create makes one host, logging its steps' durations.
func (c *cluster) create(t *testing.T, spec machine.Spec) (*machine.Host, time.Duration) {
	spec.Cluster = c.name
	t.Cleanup(func() { removeByName(c.d, c.name, spec.Name, spec.Role) })
	start := time.Now()
	var steps []string
	last, lastStep := start, ""
	h, err := c.d.Create(c.ctx, spec, func(host, step string) {
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
	c.mu.Lock()
	c.hosts = append(c.hosts, h)
	c.mu.Unlock()
	return h, time.Since(start)
}

func (c *cluster) makeFirstManager(t *testing.T) {
	m1, took := c.create(t, machine.Spec{Name: "m1", Role: machine.RoleManager})
	if m1 == nil {
		t.FailNow()
	}
	c.m1 = m1
	t.Logf("FIGURE manager host created in %.2fs", took.Seconds())
	if !strings.HasPrefix(m1.AdminToken, "BERTHADM-") || len(m1.CACert) == 0 {
		t.Fatalf("first manager came back without its admin token or CA: token %q, %d bytes of CA", m1.AdminToken, len(m1.CACert))
	}
	if _, err := os.Stat(c.d.paths(c.name, "m1").adminToken()); !os.IsNotExist(err) {
		t.Errorf("the admin token file is still on disk: %v", err)
	}
	if b, _ := os.ReadFile(c.d.paths(c.name, "m1").berthLog()); bytes.Contains(b, []byte(m1.AdminToken)) {
		t.Error("the admin token is in the manager's log")
	}
	c.mc = adminClient(m1)
	st, err := c.mc.Status(c.ctx)
	if err != nil || st.NodeName != "m1" {
		t.Fatalf("the manager's API at its address: %+v, %v", st, err)
	}
}

// makeOthers makes m2, a1 and a2 at once.
func (c *cluster) makeOthers(t *testing.T) {
	tokens, err := c.mc.Tokens(c.ctx)
	if err != nil {
		t.Fatalf("tokens: %v", err)
	}
	// BERTH_TEST_MACHINE_IMAGES adds images to copy (to measure, e.g.
	// debian:bookworm-slim, which berth cluster create copies).
	images := append([]string{c.image}, strings.Fields(os.Getenv("BERTH_TEST_MACHINE_IMAGES"))...)
	join := machine.Join{Addr: machine.HostPort(c.m1.Address, machine.ClusterPort), Token: tokens.Worker}
	agents := make([]*machine.Host, 2)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var took time.Duration
		c.m2, took = c.create(t, machine.Spec{Name: "m2", Role: machine.RoleManager,
			Join: machine.Join{Addr: join.Addr, Token: tokens.Manager}})
		if c.m2 != nil {
			t.Logf("FIGURE joining manager host created in %.2fs, in parallel with the agents", took.Seconds())
		}
	}()
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, took := c.create(t, machine.Spec{Name: fmt.Sprintf("a%d", i+1), Role: machine.RoleAgent, Join: join,
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
	c.a1, c.a2 = agents[0], agents[1]
	if c.m2.AdminToken != "" || c.m2.CACert != nil {
		t.Error("a joining manager came back with an admin token or CA: only the first has them")
	}
	if c.a1.Address == c.a2.Address || c.a1.Address == c.m1.Address {
		t.Fatalf("hosts share an address: %s %s %s", c.m1.Address, c.a1.Address, c.a2.Address)
	}
	eventually(t, 20*time.Second, "the manager to list both agents", func() error {
		nodes, err := c.mc.ListNodes(c.ctx)
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
	c.waitMember(t, "m2", func(m api.Member) bool { return m.Voter })
}

// waitMember waits until the manager lists member name as ok says.
func (c *cluster) waitMember(t *testing.T, name string, ok func(api.Member) bool) {
	t.Helper()
	eventually(t, 20*time.Second, name+" as a member", func() error {
		ms, err := c.mc.Members(c.ctx)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.Name == name && ok(m) {
				return nil
			}
		}
		return fmt.Errorf("members %+v", ms)
	})
}

// registered counts the agent registrations in host name's log.
func (c *cluster) registered(name string) int {
	b, _ := os.ReadFile(c.d.paths(c.name, name).berthLog())
	return bytes.Count(b, []byte("agent registered"))
}

func (c *cluster) publishedPort(t *testing.T) {
	code, out := execOut(t, c.d, c.a1, "docker", "run", "-d", "-p", "18080:8080", "-e", "MESSAGE=hi", c.image)
	if code != 0 {
		t.Fatalf("docker run in a1: %d %s", code, out)
	}
	c.cid = strings.TrimSpace(out)
	url := "http://" + machine.HostPort(c.a1.Address, 18080) + "/"
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
	// Host to host over the bridge: c.a2 fetches from a1's published port.
	req := fmt.Sprintf(`exec 3<>/dev/tcp/%s/18080 && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && cat <&3`, c.a1.Address)
	if code, out := execOut(t, c.d, c.a2, "bash", "-c", req); code != 0 || !strings.Contains(out, "200 OK") {
		t.Errorf("a2 reaching a1's published port: %d %q", code, out)
	}
	if code, out := execOut(t, c.d, c.a2, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", c.m1.Address, machine.APIPort)); code != 0 {
		t.Errorf("a2 reaching the manager's API: %d %q", code, out)
	}
}

func (c *cluster) memory(t *testing.T) {
	p := c.d.paths(c.name, "a1")
	containerd := supervise.ReadPid(filepath.Join(p.engineExec(), "containerd", "containerd.pid"), "containerd")
	t.Logf("FIGURE RSS: host dockerd %d kB + its containerd %d kB, agent %d kB, manager %d kB, supervisor %d kB",
		rssKB(t, childPid(t, p.engineSupPid())), rssKB(t, containerd), rssKB(t, childPid(t, p.berthPid())),
		rssKB(t, childPid(t, c.d.paths(c.name, "m1").berthPid())), rssKB(t, supervise.ReadPid(p.berthPid(), "machine-supervise")))
}

func (c *cluster) restarts(t *testing.T) {
	for _, h := range []*machine.Host{c.a1, c.m1, c.m2} {
		pidfile := c.d.paths(c.name, h.Name).berthPid()
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
	// The engine is supervised the same way.
	p2 := c.d.paths(c.name, "a2")
	oldEngine := childPid(t, p2.engineSupPid())
	if err := syscall.Kill(oldEngine, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	engineKilled := time.Now()
	eventually(t, 30*time.Second, "a2's engine to answer again", func() error {
		if pid := supervise.ReadPid(supervise.ChildPidfile(p2.engineSupPid()), ""); pid == 0 || pid == oldEngine {
			return fmt.Errorf("not restarted (pid %d)", pid)
		}
		return pingEngine(c.ctx, p2.engineSock())
	})
	t.Logf("FIGURE a2's engine answered %.2fs after kill -9", time.Since(engineKilled).Seconds())
	eventually(t, 20*time.Second, "the restarted manager's API", func() error { _, err := c.mc.Status(c.ctx); return err })
	eventually(t, 20*time.Second, "the restarted agent to register again", func() error {
		if n := c.registered("a1"); n < 2 {
			return fmt.Errorf("registered %d times", n)
		}
		return nil
	})
	eventually(t, 20*time.Second, "the restarted second manager's API", func() error {
		return c.d.status(c.ctx, c.m2, c.m1.CACert)
	})
}

func (c *cluster) stopStart(t *testing.T) {
	before := c.registered("a2")
	if err := c.d.Stop(c.ctx, c.a2); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.d.Status(c.ctx, c.a2); st != machine.StateStopped {
		t.Fatalf("after Stop: %s", st)
	}
	if err := pingEngine(c.ctx, c.d.paths(c.name, "a2").engineSock()); err == nil {
		t.Error("the engine answers after Stop")
	}
	if err := c.d.Start(c.ctx, c.a2); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.d.Status(c.ctx, c.a2); st != machine.StateRunning {
		t.Fatalf("after Start: %s", st)
	}
	eventually(t, 20*time.Second, "a2 to register again", func() error {
		if n := c.registered("a2"); n <= before {
			b, _ := os.ReadFile(c.d.paths(c.name, "a2").berthLog())
			return fmt.Errorf("registered %d times; log ends:\n%s", n, b[max(0, len(b)-2000):])
		}
		return nil
	})
	// One of two managers: the cluster has no quorum until it is back.
	if err := c.d.Stop(c.ctx, c.m2); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.d.Status(c.ctx, c.m2); st != machine.StateStopped {
		t.Fatalf("m2 after Stop: %s", st)
	}
	if err := c.d.Start(c.ctx, c.m2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "m2's API after Start", func() error { return c.d.status(c.ctx, c.m2, c.m1.CACert) })
	c.waitMember(t, "m2", func(m api.Member) bool { return m.Reachable })
}

// removeAll removes every host (a1 after its engine died hard) and finds
// nothing left.
func (c *cluster) removeAll(t *testing.T) {
	// a1's engine dies hard (no supervisor to restart it, no graceful
	// stop of its containers): Remove must still kill the container.
	p1 := c.d.paths(c.name, "a1")
	sup, engine := supervise.ReadPid(p1.engineSupPid(), "machine-supervise"), childPid(t, p1.engineSupPid())
	_ = syscall.Kill(sup, syscall.SIGSTOP)
	_ = syscall.Kill(engine, syscall.SIGKILL)
	_ = syscall.Kill(sup, syscall.SIGKILL)
	if c.cid == "" || len(pidsOfContainers([]string{c.cid})) == 0 {
		t.Fatalf("container %q of a1 does not run after its engine died", c.cid)
	}

	var rm sync.WaitGroup
	for _, h := range c.hosts {
		rm.Add(1)
		go func() {
			defer rm.Done()
			if err := c.d.Remove(c.ctx, h, false); err != nil {
				t.Errorf("remove %s: %v", h.Name, err)
			}
		}()
	}
	rm.Wait()
	footprintEqual(t, c.before, snapshot(t, c.d, c.name))
	if pids := pidsOfContainers([]string{c.cid}); len(pids) > 0 {
		t.Errorf("the container of a1 runs on after Remove: %v", pids)
	}
	if st, _ := c.d.Status(c.ctx, c.a1); st != machine.StateMissing {
		t.Errorf("a removed host is %s", st)
	}
}
