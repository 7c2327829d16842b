package ssh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
	xssh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// stepLog records the steps Create reports.
type stepLog struct {
	mu    sync.Mutex
	steps []string
}

func (s *stepLog) add(_, step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, step)
}

func (s *stepLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.steps, "; ")
}

// apiClient talks to the manager h over TLS with its admin token.
func apiClient(t *testing.T, h *machine.Host) *api.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(h.CACert) {
		t.Fatalf("the manager's CA is not PEM: %q", h.CACert)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: pki.RoleManager.ServerName()}
	return api.NewClient("https://"+net.JoinHostPort(h.Address, fmt.Sprint(machine.APIPort)), api.WithTLS(cfg), api.WithToken(h.AdminToken))
}

// waitNode waits until the node name is ready in the cluster.
func waitNode(ctx context.Context, t *testing.T, c *api.Client, name string) *types.Node {
	t.Helper()
	var found *types.Node
	waitFor(t, 30*time.Second, "node "+name+" to be ready", func() error {
		nodes, err := c.ListNodes(ctx)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.Name == name && n.Status == types.NodeReady {
				found = n
				return nil
			}
		}
		return fmt.Errorf("%d nodes, none ready named %s", len(nodes), name)
	})
	return found
}

func checkState(ctx context.Context, t *testing.T, d *Driver, h *machine.Host, want machine.State) {
	t.Helper()
	waitFor(t, 15*time.Second, fmt.Sprintf("host %s to be %s", h.Name, want), func() error {
		got, err := d.Status(ctx, h)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("state %s", got)
		}
		return nil
	})
}

func taskStates(tasks []*types.Task) string {
	var s []string
	for _, tk := range tasks {
		s = append(s, fmt.Sprintf("%s on %q: %s %s", tk.ID, tk.NodeID, tk.State, tk.Error))
	}
	return strings.Join(s, ", ")
}

// freeLoopbackPort is a port on 127.0.0.1 where nothing listens.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// unusedIP is an address on ip's /24 where no container runs (the
// test's network hands out addresses from its start).
func unusedIP(t *testing.T, ip string) string {
	t.Helper()
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		t.Fatalf("%s is not IPv4", ip)
	}
	return net.IPv4(v4[0], v4[1], v4[2], 250).String()
}

// serveAgent serves an ssh-agent holding keyFile's key on a socket in dir.
func serveAgent(t *testing.T, dir, keyFile string) string {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := xssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	ring := agent.NewKeyring()
	if err := ring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(ring, c)
			}()
		}
	}()
	return sock
}

// waitRegistered waits until host name's agent on tg has registered n
// times (each start registers once).
func waitRegistered(t *testing.T, tg target, name string, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("agent %s to register %d times", name, n), func() error {
		got := tg.sh(t, "grep -c 'agent registered' "+newLayout(name).log()+" || true")
		if got != fmt.Sprint(n) {
			return fmt.Errorf("registered %s times", got)
		}
		return nil
	})
}

// supervisedPid is the pid of berth on tg's host name, from its
// supervisor's child pidfile; it fails unless that process is berth and
// its parent berth's supervisor.
func supervisedPid(t *testing.T, tg target, name string) string {
	t.Helper()
	pid, err := supervisedPidErr(t, tg, name)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func supervisedPidErr(t *testing.T, tg target, name string) (string, error) {
	t.Helper()
	l := newLayout(name)
	out := tg.sh(t, fmt.Sprintf(`p=$(cat %s.child 2>/dev/null) || { echo "no child pidfile"; exit 0; }
pp=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null)
echo "$p|$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)|$(tr '\0' ' ' < /proc/${pp:-0}/cmdline 2>/dev/null)"`, l.pidfile()))
	f := strings.SplitN(out, "|", 3)
	if len(f) != 3 || !strings.HasPrefix(f[1], l.bin()+" ") || !strings.HasPrefix(f[2], l.bin()+" machine-supervise ") {
		return "", fmt.Errorf("berth of %s on %s is not a child of machine-supervise: %q", name, tg.name, out)
	}
	return f[0], nil
}

// killSupervised kills berth of host name on tg with SIGKILL, and returns
// its pid.
func killSupervised(t *testing.T, tg target, name string) string {
	t.Helper()
	pid := supervisedPid(t, tg, name)
	tg.sh(t, "kill -9 "+pid)
	return pid
}
