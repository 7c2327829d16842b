package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// Bounds of the partition test: an election on the hosts' bridge takes a
// few heartbeats (1 s each); the writers stop after maxWrites each, well
// under the cluster's 1000 machine records.
const (
	hostElectionBound = 10 * time.Second
	writeEvery        = 150 * time.Millisecond
	writeAttempt      = 4 * time.Second
	maxWrites         = 200
)

// TestPartitionOnHosts cuts the leader of a cluster of hosts off from the
// other hosts (iptables drops inside its namespace; no process dies) while
// a writer per manager records every write the cluster acknowledged: the
// majority elects another leader, the old one steps down and refuses
// writes, writes go on through the majority, and once healed the old
// leader catches up: every acknowledged write is on every manager.
func TestPartitionOnHosts(t *testing.T) {
	needHosts(t)
	c, name := hostCluster(t)
	ctx := context.Background()
	clients, addrs := managerClients(t, c, name, writeAttempt)
	subnet := clusterSubnet(t, c.home, name)

	writers := startWriters(t, clients)
	h.WaitFor(t, 30*time.Second, "writes acknowledged on every manager", func() error {
		for _, w := range writers {
			if n, _ := w.counts(); n < 3 {
				return fmt.Errorf("%s acknowledged %d writes", w.host, n)
			}
		}
		return nil
	})

	old := leaderName(t, contextClient(t, c.home, name))
	heal := cutOff(t, "berth-"+name+"-"+old, subnet)
	cut := time.Now()
	t.Logf("cut %s (%s) off from the other hosts of %s", old, addrs[old], subnet)

	h.WaitFor(t, 10*time.Second, old+" steps down", func() error {
		if s, err := clients[old].Status(ctx); err != nil || s.Leader {
			return fmt.Errorf("%s: leader %v (%v)", old, s.Leader, err)
		}
		return nil
	})
	stepDown := time.Since(cut)
	next := waitNewLeader(t, clients, old)
	elected := time.Now()
	tookLeader := elected.Sub(cut)
	t.Logf("%s stepped down after %s; %s leads after %s", old, stepDown.Round(time.Millisecond), next, tookLeader.Round(time.Millisecond))
	if tookLeader > hostElectionBound {
		t.Errorf("a new leader took %s, want at most %s", tookLeader, hostElectionBound)
	}

	// A write on the old leader fails, however long it is given: the
	// manager forwards it to a leader it cannot reach and gives up.
	refusal := make(chan error, 1)
	go func() {
		slow := contextClientAt(t, c.home, name, "https://"+addrs[old], 30*time.Second)
		_, err := slow.PutMachine(ctx, apiMachine("refused-probe"))
		refusal <- err
	}()
	h.WaitFor(t, 15*time.Second, "writes acknowledged by the majority after the election", func() error {
		for _, w := range writers {
			if w.host != old && w.ackedAfter(elected) > 0 {
				return nil
			}
		}
		return fmt.Errorf("no write acknowledged since %s was elected", next)
	})
	select {
	case err := <-refusal:
		if err == nil {
			t.Fatalf("the partitioned %s acknowledged a write", old)
		}
		t.Logf("write on the partitioned %s refused: %v", old, err)
	case <-time.After(45 * time.Second):
		t.Fatalf("a write on the partitioned %s neither failed nor succeeded in 45 s", old)
	}

	heal()
	healed := time.Now()
	h.WaitFor(t, 30*time.Second, old+" catches up", hasAll(clients[old], writers))
	catchUp := time.Since(healed)
	h.WaitFor(t, 20*time.Second, "a write acknowledged through "+old+" after the heal", func() error {
		for _, w := range writers {
			if w.host == old && w.ackedAfter(healed) > 0 {
				return nil
			}
		}
		return fmt.Errorf("%s acknowledged nothing since the heal", old)
	})
	acked, refused := stopWriters(writers)

	lost := missingAfter(30*time.Second, clients, writers)
	t.Logf("FIGURE scenario=partition-hosts new_leader_ms=%d stepdown_ms=%d catchup_ms=%d writes_acked=%d writes_failed=%d lost=%d",
		tookLeader.Milliseconds(), stepDown.Milliseconds(), catchUp.Milliseconds(), acked, refused, len(lost))
	if len(lost) > 0 {
		t.Fatalf("acknowledged writes missing: %s", strings.Join(lost, "; "))
	}
}

// hostCluster builds berth and makes a cluster of three manager hosts
// through the CLI; a cleanup removes it and checks nothing is left.
func hostCluster(t *testing.T) (cli, string) {
	t.Helper()
	c := newCLI(t, "bp")
	home := c.home
	name := "p" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	before := footprintOf(t, home, name)
	start := time.Now()
	r := c.run(t, "cluster", "create", name, "--managers", "3", "--agents", "0")
	var links []string
	t.Cleanup(func() {
		rm := c.run(t, "cluster", "rm", name)
		if rm.Code != 0 {
			t.Errorf("cluster rm: %s", rm)
			return
		}
		after := footprintOf(t, home, name, links...)
		after.allowStoreDirs(home)
		if d := before.diff(after); d != "" {
			t.Errorf("cluster rm left things behind:\n%s", d)
		}
	})
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	links = recordedLinks(t, home, name)
	t.Logf("cluster create 3+0: ready in %.1fs", time.Since(start).Seconds())
	return c, name
}

// managerClients is a client per manager host, by name, each talking to
// that manager only, and the managers' API addresses.
func managerClients(t *testing.T, c cli, name string, timeout time.Duration) (map[string]*api.Client, map[string]string) {
	t.Helper()
	ls := c.must(t, "machine", "ls", "--json")
	var ms []struct{ Name, Role, Address string }
	if err := json.Unmarshal([]byte(ls.Stdout), &ms); err != nil {
		t.Fatalf("machine ls --json: %v\n%s", err, ls.Stdout)
	}
	clients, addrs := map[string]*api.Client{}, map[string]string{}
	for _, m := range ms {
		if m.Role == "manager" {
			addrs[m.Name] = net.JoinHostPort(m.Address, strconv.Itoa(machine.APIPort))
			clients[m.Name] = contextClientAt(t, c.home, name, "https://"+addrs[m.Name], timeout)
		}
	}
	if len(clients) != 3 {
		t.Fatalf("managers %v, want three", addrs)
	}
	return clients, addrs
}

// clusterSubnet reads the subnet the local driver gave the cluster.
func clusterSubnet(t *testing.T, home, name string) netip.Prefix {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, "state", "berth", "hosts", name, "network.json"))
	if err != nil {
		t.Fatal(err)
	}
	var n struct {
		Subnet string `json:"subnet"`
	}
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	p, err := netip.ParsePrefix(n.Subnet)
	if err != nil {
		t.Fatalf("network.json: subnet %q: %v", n.Subnet, err)
	}
	return p
}

// cutOff drops, inside the host's namespace, what its eth0 sends to or
// receives from the cluster's subnet, but for the bridge's own address:
// the test reaches the host through it, and so sees it from outside. The
// returned heal deletes the rules (once; a cleanup calls it too).
func cutOff(t *testing.T, ns string, subnet netip.Prefix) func() {
	t.Helper()
	gw := subnet.Addr().Next().String()
	rules := [][]string{
		{"INPUT", "-i", "eth0", "-s", gw, "-j", "ACCEPT"},
		{"INPUT", "-i", "eth0", "-s", subnet.String(), "-j", "DROP"},
		{"OUTPUT", "-o", "eth0", "-d", gw, "-j", "ACCEPT"},
		{"OUTPUT", "-o", "eth0", "-d", subnet.String(), "-j", "DROP"},
	}
	ipt := func(op string, rule []string) error {
		args := append([]string{"--net=/run/netns/" + ns, "--", "iptables", "-w", op}, rule...)
		if out, err := exec.Command("nsenter", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %s %v in %s: %w: %s", op, rule, ns, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	var once sync.Once
	heal := func() {
		once.Do(func() {
			for _, r := range slices.Backward(rules) {
				if err := ipt("-D", r); err != nil {
					t.Errorf("heal: %v", err)
				}
			}
		})
	}
	t.Cleanup(heal)
	for _, r := range rules {
		if err := ipt("-A", r); err != nil {
			heal()
			t.Fatal(err)
		}
	}
	return heal
}

// waitNewLeader waits for a manager other than old to say it leads.
func waitNewLeader(t *testing.T, clients map[string]*api.Client, old string) string {
	t.Helper()
	var next string
	h.WaitFor(t, 3*hostElectionBound, "a leader other than "+old, func() error {
		for n, c := range clients {
			if n == old {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			s, err := c.Status(ctx)
			cancel()
			if err == nil && s.Leader {
				next = n
				return nil
			}
		}
		return fmt.Errorf("none of the majority leads")
	})
	return next
}

// writer writes machine records through one manager, one at a time, and
// keeps those the cluster acknowledged.
type writer struct {
	host string
	c    *api.Client
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	acked  []ack
	failed int
}

type ack struct {
	name string
	at   time.Time
}

// startWriters starts a writer per manager; a cleanup stops them.
func startWriters(t *testing.T, clients map[string]*api.Client) []*writer {
	var ws []*writer
	for host, c := range clients {
		w := &writer{host: host, c: c, stop: make(chan struct{}), done: make(chan struct{})}
		go w.run()
		ws = append(ws, w)
	}
	t.Cleanup(func() { stopWriters(ws) })
	return ws
}

func (w *writer) run() {
	defer close(w.done)
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	for i := range maxWrites {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		name := fmt.Sprintf("w-%s-%03d", w.host, i)
		ctx, cancel := context.WithTimeout(context.Background(), writeAttempt)
		_, err := w.c.PutMachine(ctx, apiMachine(name))
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked = append(w.acked, ack{name, time.Now()})
		} else {
			w.failed++
		}
		w.mu.Unlock()
	}
}

func (w *writer) counts() (acked, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked), w.failed
}

func (w *writer) ackedAfter(at time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, a := range w.acked {
		if a.at.After(at) {
			n++
		}
	}
	return n
}

func (w *writer) names() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, a := range w.acked {
		out = append(out, a.name)
	}
	return out
}

// stopWriters stops the writers (again is a no-op) and waits for them.
func stopWriters(ws []*writer) (acked, failed int) {
	for _, w := range ws {
		select {
		case <-w.stop:
		default:
			close(w.stop)
		}
		<-w.done
		a, f := w.counts()
		acked, failed = acked+a, failed+f
	}
	return acked, failed
}

// missing lists the writes acknowledged so far that c's own store lacks
// (a manager answers reads from its store, leader or not).
func missing(c *api.Client, ws []*writer) ([]string, error) {
	ms, err := c.Machines(context.Background())
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, m := range ms {
		have[m.Name] = true
	}
	var out []string
	for _, w := range ws {
		for _, n := range w.names() {
			if !have[n] {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

func hasAll(c *api.Client, ws []*writer) func() error {
	return func() error {
		miss, err := missing(c, ws)
		if err != nil {
			return err
		}
		if len(miss) > 0 {
			return fmt.Errorf("%d acknowledged writes missing, first %s", len(miss), miss[0])
		}
		return nil
	}
}

// missingAfter waits up to timeout for every manager to hold every
// acknowledged write, and returns, per manager, those still missing.
func missingAfter(timeout time.Duration, clients map[string]*api.Client, ws []*writer) []string {
	var lost []string
	_ = h.Poll(timeout, func() error {
		lost = nil
		for n, c := range clients {
			miss, err := missing(c, ws)
			if err != nil {
				lost = append(lost, n+": "+err.Error())
			}
			for _, m := range miss {
				lost = append(lost, n+" lacks "+m)
			}
		}
		if len(lost) > 0 {
			return fmt.Errorf("%d missing", len(lost))
		}
		return nil
	})
	return lost
}
