package hosts

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
	xssh "golang.org/x/crypto/ssh"
)

// sshExecCompose runs one exec task on the ssh host s1, which leaves the
// host's name where the test reads it through `berth machine ssh`.
const sshExecCompose = `
services:
  hello:
    x-berth-driver: exec
    command: ["/bin/sh", "-c", "hostname > /tmp/berth-ran; exec sleep 3600"]
    deploy:
      placement:
        constraints: ["node.labels.machine==s1"]
`

// TestSSHMachine drives the ssh machine driver through the berth binary,
// as a user does: a cluster of local hosts (a manager and an agent), then
// `berth machine create --driver ssh` of an sshd container the test built
// (its own filesystem, no systemd: berth runs there under berth's
// supervisor). The node joins and runs an exec task; machine ls, inspect,
// ssh, stop, start and rm work on it; a berth killed with -9 there comes
// back; no join token is on any command line, here or there. Then a wrong
// key, an address of the test's network where no host answers and a
// changed host key each fail with one line and leave nothing behind.
func TestSSHMachine(t *testing.T) {
	needHosts(t)
	root, err := h.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp("", "bs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	c := cli{bin: filepath.Join(home, "berth"), home: home}
	buildStaticBerth(t, root, c.bin)
	image := buildImage(t, filepath.Join(root, "internal", "machine", "ssh", "testdata", "sshd"), "Dockerfile", "start.sh")
	network := sshNetwork(t)
	dir := t.TempDir()
	key, pub := newSSHKey(t, dir, "id_ed25519")
	tg := startSSHTarget(t, image, network, pub)
	kh := knownHostsFile(t, dir, "known_hosts", map[string]xssh.PublicKey{tg.ip: tg.hostKey(t)})
	sshCreate := func(name string, extra ...string) []string {
		return append([]string{"machine", "create", "--driver", "ssh", "--ssh-addr", tg.ip, "--ssh-key", key, "--known-hosts", kh}, append(extra, name)...)
	}

	name := "s" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	r := c.run(t, "cluster", "create", name, "--managers", "1", "--agents", "1")
	t.Cleanup(func() { t.Logf("cleanup: %s", c.run(t, "cluster", "rm", name)) })
	if r.Code != 0 {
		t.Fatalf("%s", r)
	}
	ac := contextClient(t, home, name)
	ctx := context.Background()
	toks, err := ac.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}

	r = c.must(t, sshCreate("s1", "--label", "machine=s1")...)
	t.Logf("%s%s", r.Stderr, r.Stdout)
	if !strings.Contains(r.Stdout, "Created machine s1 (agent, "+tg.ip+", driver ssh)") {
		t.Fatalf("create output:\n%s", r)
	}
	node := waitNodeReady(t, ac, "s1")

	t.Run("no join token on a command line", func(t *testing.T) {
		// The local agent a1 and the ssh agent s1 both joined with the
		// worker token, through --token-file; the files are gone.
		here := allCmdlines(t)
		there := tg.cmdlines(t)
		for where, lines := range map[string]string{"this machine": here, tg.name: there} {
			if strings.Contains(lines, toks.Worker) || strings.Contains(lines, toks.Manager) {
				t.Errorf("a join token is on a command line on %s", where)
			}
		}
		if !strings.Contains(there, "--token-file") || !strings.Contains(here, filepath.Join(name, "a1", machine.JoinTokenFile)) {
			t.Errorf("berth on s1 or a1 was not given --token-file (so the check above proves nothing)")
		}
		if _, err := os.Stat(filepath.Join(home, "state", "berth", "hosts", name, "a1", machine.JoinTokenFile)); !os.IsNotExist(err) {
			t.Errorf("a1's token file is still there: %v", err)
		}
		if left := tg.sh(t, "ls /var/lib/berth-machine/*/"+machine.JoinTokenFile+" 2>/dev/null; true"); left != "" {
			t.Errorf("s1's token file is still there: %s", left)
		}
	})

	t.Run("ls, inspect, an exec task and ssh", func(t *testing.T) {
		m := machineByName(t, c, "s1")
		if m.Driver != "ssh" || m.State != "running" || m.Address != tg.ip || m.Labels["machine"] != "s1" {
			t.Fatalf("machine ls: %+v", m)
		}
		ins := c.must(t, "machine", "inspect", "s1")
		var rows []machineRowJSON
		if err := json.Unmarshal([]byte(ins.Stdout), &rows); err != nil || len(rows) != 1 || rows[0].Address != tg.ip || rows[0].State != "running" {
			t.Fatalf("inspect: %v\n%s", err, ins.Stdout)
		}
		file := h.WriteFile(t, dir, "ssh.yaml", sshExecCompose)
		c.must(t, "up", "-p", "sshapp", "-f", file)
		h.WaitFor(t, time.Minute, "the exec task running on s1", func() error {
			tasks, _, err := ac.ListTasks(ctx, api.TaskQuery{App: "sshapp"})
			if err != nil {
				return err
			}
			for _, tk := range tasks {
				if tk.State == types.TaskRunning && tk.NodeID == node {
					return nil
				}
			}
			return fmt.Errorf("%d tasks, none running on s1", len(tasks))
		})
		h.WaitFor(t, 10*time.Second, "the task's file on s1, through machine ssh", func() error {
			out := c.run(t, "machine", "ssh", "s1", "--", "cat", "/tmp/berth-ran")
			if out.Code != 0 || strings.TrimSpace(out.Stdout) != tg.name {
				return fmt.Errorf("%s", out)
			}
			return nil
		})
		if out := c.run(t, "machine", "ssh", "s1", "--", "sh", "-c", "exit 3"); out.Code != 3 {
			t.Fatalf("machine ssh exit 3: %s", out)
		}
	})

	t.Run("kill -9 of berth there, stop, start", func(t *testing.T) {
		pid := supervisedBerth(t, tg, "s1")
		tg.sh(t, "kill -9 "+pid)
		h.WaitFor(t, 30*time.Second, "s1's berth restarted by its supervisor and registered again", func() error {
			if now, err := supervisedBerthErr(t, tg, "s1"); err != nil || now == pid {
				return fmt.Errorf("berth pid %s (killed %s): %v", now, pid, err)
			}
			return registeredTimes(t, tg, "s1", 2)
		})
		c.must(t, "machine", "stop", "s1")
		if m := machineByName(t, c, "s1"); m.State != "stopped" {
			t.Fatalf("after stop: %+v", m)
		}
		if left := tg.leftovers(t); strings.Contains(left, "pid ") {
			t.Fatalf("processes left on %s after stop:\n%s", tg.name, left)
		}
		c.must(t, "machine", "start", "s1")
		if m := machineByName(t, c, "s1"); m.State != "running" {
			t.Fatalf("after start: %+v", m)
		}
		h.WaitFor(t, 30*time.Second, "s1 registered again after start", func() error { return registeredTimes(t, tg, "s1", 3) })
	})

	t.Run("bad input fails with one line and leaves nothing", func(t *testing.T) {
		wrongKey, _ := newSSHKey(t, dir, "wrong")
		_, other := newSSHKey(t, dir, "other")
		changed := knownHostsFile(t, dir, "changed", map[string]xssh.PublicKey{tg.ip: other})
		unused := unusedAddr(t, tg.ip)
		for _, tc := range []struct {
			name string
			args []string
			want []string
		}{
			{"wrong key", []string{"machine", "create", "--driver", "ssh", "--ssh-addr", tg.ip, "--ssh-key", wrongKey, "--known-hosts", kh, "s2"},
				[]string{"s2: connect to " + tg.ip + ":22", "root@" + tg.ip + ":22 refused the key " + wrongKey}},
			{"no host at the address", []string{"machine", "create", "--driver", "ssh", "--ssh-addr", unused, "--ssh-key", key, "--known-hosts", kh, "s3"},
				[]string{"cannot reach " + unused + ":22"}},
			{"changed host key", []string{"machine", "create", "--driver", "ssh", "--ssh-addr", tg.ip, "--ssh-key", key, "--known-hosts", changed, "s4"},
				[]string{"CHANGED", xssh.FingerprintSHA256(other), xssh.FingerprintSHA256(tg.hostKey(t))}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := tg.leftovers(t)
				r := c.run(t, tc.args...)
				errLine := oneErrorLine(t, r)
				t.Logf("%s", errLine)
				for _, w := range tc.want {
					if !strings.Contains(errLine, w) {
						t.Errorf("error %q does not say %q", errLine, w)
					}
				}
				host := tc.args[len(tc.args)-1]
				noTrace(t, c, home, name, host)
				if left := tg.leftovers(t); left != before {
					t.Errorf("left on %s:\n%s\n(before:\n%s)", tg.name, left, before)
				}
			})
		}
	})

	t.Run("install docker", func(t *testing.T) {
		installDocker(t, sshEnv{c: c, home: home, cluster: name, dir: dir, key: key, image: image, network: network, pub: pub, ac: ac})
	})

	// The app is pinned to s1: rm would wait for its task to move, and
	// it has nowhere to go.
	c.must(t, "down", "-p", "sshapp")
	r = c.must(t, "machine", "rm", "s1")
	t.Logf("%s%s", r.Stderr, r.Stdout)
	if left := tg.leftovers(t); left != "" {
		t.Fatalf("machine rm left on %s:\n%s", tg.name, left)
	}
	noTrace(t, c, home, name, "s1")
	h.WaitFor(t, 10*time.Second, "node s1 gone from the cluster", func() error {
		if _, err := ac.GetNode(ctx, node); err == nil {
			return fmt.Errorf("node s1 (%s) is still in the cluster", node)
		}
		return nil
	})
}

// machineRowJSON is a row of `machine ls --json` and `inspect`.
type machineRowJSON struct {
	Name, Driver, Role, Address, State string
	Labels                             map[string]string
}

func machineByName(t *testing.T, c cli, name string) machineRowJSON {
	t.Helper()
	var rows []machineRowJSON
	out := c.must(t, "machine", "ls", "--json")
	if err := json.Unmarshal([]byte(out.Stdout), &rows); err != nil {
		t.Fatalf("machine ls --json: %v\n%s", err, out.Stdout)
	}
	for _, r := range rows {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("machine ls has no %s:\n%s", name, out.Stdout)
	return machineRowJSON{}
}

// noTrace checks that host is neither in the cluster's records nor in
// this machine's store.
func noTrace(t *testing.T, c cli, home, cluster, host string) {
	t.Helper()
	if out := c.must(t, "machine", "ls"); regexp.MustCompile(`(?m)^` + host + `\s`).MatchString(out.Stdout) {
		t.Errorf("the cluster still records machine %s:\n%s", host, out.Stdout)
	}
	if _, err := os.Stat(filepath.Join(home, "state", "berth", "machines", cluster, host+".json")); !os.IsNotExist(err) {
		t.Errorf("this machine still keeps a record of %s: %v", host, err)
	}
}

// progressLine is a line create prints per step.
var progressLine = regexp.MustCompile(`^[a-z0-9-]+: .+ \(\d+\.\ds\)$`)

// oneErrorLine checks that r failed with one error line (after any
// progress lines) and returns it.
func oneErrorLine(t *testing.T, r h.Result) string {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("succeeded:\n%s", r)
	}
	var errs []string
	for _, l := range strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n") {
		if !progressLine.MatchString(l) {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "error: ") {
		t.Fatalf("want one error line after the progress:\n%s", r)
	}
	return errs[0]
}

// waitNodeReady waits until node name is ready and returns its ID.
func waitNodeReady(t *testing.T, c *api.Client, name string) string {
	t.Helper()
	var id string
	h.WaitFor(t, 30*time.Second, "node "+name+" ready", func() error {
		ns, err := c.ListNodes(context.Background())
		if err != nil {
			return err
		}
		for _, n := range ns {
			if n.Name == name && n.Status == types.NodeReady {
				id = n.ID
				return nil
			}
		}
		return fmt.Errorf("no ready node %s among %d", name, len(ns))
	})
	return id
}

// supervisedBerth is the pid of berth of host name on tg; it fails unless
// that process's parent is berth's supervisor.
func supervisedBerth(t *testing.T, tg sshTarget, name string) string {
	t.Helper()
	pid, err := supervisedBerthErr(t, tg, name)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func supervisedBerthErr(t *testing.T, tg sshTarget, name string) (string, error) {
	t.Helper()
	dir := "/var/lib/berth-machine/" + name
	out := tg.sh(t, fmt.Sprintf(`p=$(cat %s/berth.pid.child 2>/dev/null) || { echo none; exit 0; }
pp=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null)
echo "$p|$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)|$(tr '\0' ' ' < /proc/$pp/cmdline 2>/dev/null)"`, dir))
	f := strings.SplitN(out, "|", 3)
	if len(f) != 3 || !strings.HasPrefix(f[1], dir+"/berth agent ") || !strings.HasPrefix(f[2], dir+"/berth machine-supervise ") {
		return "", fmt.Errorf("berth of %s on %s does not run under machine-supervise: %q", name, tg.name, out)
	}
	return f[0], nil
}

func registeredTimes(t *testing.T, tg sshTarget, name string, n int) error {
	got := tg.sh(t, "grep -c 'agent registered' /var/lib/berth-machine/"+name+"/berth.log || true")
	if got != strconv.Itoa(n) {
		return fmt.Errorf("registered %s times, want %d", got, n)
	}
	return nil
}

// allCmdlines is every command line running on this machine.
func allCmdlines(t *testing.T) string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		if line, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil {
			b.WriteString(strings.ReplaceAll(string(line), "\x00", " ") + "\n")
		}
	}
	return b.String()
}
