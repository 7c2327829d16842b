package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/pki"
)

// callTimeout bounds one API call of the harness: a call to a frozen or
// partitioned manager must not hang a test.
const callTimeout = 5 * time.Second

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// Manager is one `berth server` process.
type Manager struct {
	*Process
	// API, RaftAddr and ClusterAddr are host:port.
	API, RaftAddr, ClusterAddr string
	admin                      *atomic.Value // the cluster's admin token
}

// URL is the manager's API as the CLI's --addr takes it.
func (m *Manager) URL() string { return "http://" + m.API }

// Client is an API client of this manager (plain HTTP: the API is on
// loopback) with the cluster's admin token, as every API call needs one.
func (m *Manager) Client() *api.Client { return api.NewClient(m.URL(), api.WithToken(m.Token())) }

// Token is the cluster's admin token, for requests the test makes by hand
// (Authorization: Bearer TOKEN).
func (m *Manager) Token() string { return m.admin.Load().(string) }

func (m *Manager) expectAnswers() error {
	if !m.Running() {
		return fmt.Errorf("%s exited:\n%s", m.Name, m.Log(30))
	}
	ctx, cancel := callCtx()
	defer cancel()
	_, err := m.Client().Status(ctx)
	return err
}

// Leads asks m's API, briefly, whether m leads.
func (m *Manager) Leads() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	st, err := m.Client().Status(ctx)
	return err == nil && st.Leader
}

// Identity loads the certificate the manager was issued (or issued itself,
// when it bootstrapped).
func (m *Manager) Identity() (*pki.Identity, error) {
	return pki.LoadIdentity(filepath.Join(m.DataDir, "pki"))
}

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
		if m.Token() == "" {
			// Printed once, at bootstrap, into the manager's log (its stdout).
			tok, ok := findAdminToken(m.Log(200))
			if !ok {
				return fmt.Errorf("%s has not printed its admin token yet", m.Name)
			}
			c.admin.Store(tok)
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
	m := &Manager{Process: c.newProcess(tb, fmt.Sprintf("m%d", i)), admin: c.admin}
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

// Token returns the current join token for role ("worker" or "manager"),
// as `berth token ROLE` prints it on m.
func (c *Cluster) Token(tb testing.TB, m *Manager, role string) string {
	tb.Helper()
	r := c.MustRun(tb, m, "token", role)
	if tok, ok := findToken(r.Stdout); ok {
		return tok
	}
	tb.Fatalf("`berth token %s` printed no join token:\n%s", role, r)
	return ""
}

// findToken picks the join token out of a command's output, whether it is
// printed alone or inside a sentence.
func findToken(out string) (string, bool) {
	for _, f := range strings.Fields(out) {
		if _, err := pki.ParseToken(f); err == nil {
			return f, true
		}
	}
	return "", false
}

// findAdminToken picks the admin token out of a bootstrap's output.
func findAdminToken(out string) (string, bool) {
	for _, f := range strings.Fields(out) {
		if pki.IsAdminToken(f) {
			return f, true
		}
	}
	return "", false
}

// Members runs `berth server members --json` on m.
func (c *Cluster) Members(tb testing.TB, m *Manager) ([]api.Member, error) {
	tb.Helper()
	r := c.Run(tb, m, "--json", "server", "members")
	if r.Code != 0 {
		return nil, fmt.Errorf("%s", r)
	}
	var ms []api.Member
	if err := json.Unmarshal([]byte(r.Stdout), &ms); err != nil {
		return nil, fmt.Errorf("decode server members --json: %w\n%s", err, r.Stdout)
	}
	return ms, nil
}

// ExpectVoters is a WaitFor condition: m lists n members, all voters, one
// of them the leader.
func (c *Cluster) ExpectVoters(tb testing.TB, m *Manager, n int) func() error {
	return func() error {
		ms, err := c.Members(tb, m)
		if err != nil {
			return err
		}
		voters, leaders := 0, 0
		for _, mb := range ms {
			if mb.Voter {
				voters++
			}
			if mb.Leader {
				leaders++
			}
		}
		if len(ms) != n || voters != n || leaders != 1 {
			return fmt.Errorf("want %d voters and one leader, have %+v", n, ms)
		}
		return nil
	}
}

// Leader waits until every live manager names the same leader, itself live,
// and returns it.
func (c *Cluster) Leader(tb testing.TB, timeout time.Duration) *Manager {
	tb.Helper()
	var leader *Manager
	WaitFor(tb, timeout, "one leader all live managers agree on", func() error {
		var err error
		leader, err = c.agreedLeader(tb)
		return err
	})
	return leader
}

// agreedLeader asks every live manager who leads (by its members list).
func (c *Cluster) agreedLeader(tb testing.TB) (*Manager, error) {
	live := c.Live()
	if len(live) == 0 {
		return nil, errors.New("no manager is running")
	}
	var name string
	for _, m := range live {
		ms, err := c.Members(tb, m)
		if err != nil {
			return nil, fmt.Errorf("members on %s: %w", m.Name, err)
		}
		l := leaderOf(ms)
		if l == "" {
			return nil, fmt.Errorf("%s knows no leader: %+v", m.Name, ms)
		}
		if name != "" && l != name {
			return nil, fmt.Errorf("managers disagree on the leader: %s and %s", name, l)
		}
		name = l
	}
	for _, m := range live {
		if m.Name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("the leader %s is not a live manager", name)
}

func leaderOf(ms []api.Member) string {
	for _, m := range ms {
		if m.Leader {
			return m.Name
		}
	}
	return ""
}

// WaitNewLeader waits until a live manager other than old says it leads,
// polling every manager's status closely, and returns it with the time
// since the call began (start it right after killing old).
func (c *Cluster) WaitNewLeader(tb testing.TB, old *Manager, timeout time.Duration) (*Manager, time.Duration) {
	tb.Helper()
	began := time.Now()
	deadline := began.Add(timeout)
	for time.Now().Before(deadline) {
		for _, m := range c.Live() {
			if m == old || !m.Leads() {
				continue
			}
			return m, time.Since(began)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("no manager other than %s leads after %s", old.Name, timeout)
	return nil, 0
}
