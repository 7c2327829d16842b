package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/types"
	xssh "golang.org/x/crypto/ssh"
)

// TestProvisionOverSSH makes a manager and an agent on two sshd
// containers through the driver (a supervised process there: no systemd),
// runs an exec-driver task on the agent, stops, starts and removes both;
// then checks that bad input fails clearly and leaves nothing behind.
func TestProvisionOverSSH(t *testing.T) {
	needDocker(t)
	dir := t.TempDir()
	image := sshdImage(t)
	bin := buildBerth(t, dir)
	network, _ := testNetwork(t)
	key, pub := newKey(t, dir, "id_ed25519")
	mgrT := startTarget(t, image, network, pub)
	agT := startTarget(t, image, network, pub)
	kh := knownHosts(t, dir, "known_hosts", map[string]xssh.PublicKey{mgrT.ip: mgrT.hostKey(t), agT.ip: agT.hostKey(t)})
	d := New(Config{Binary: bin, DialTimeout: 3 * time.Second, ReadyTimeout: 45 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := func(tg target) map[string]string {
		return map[string]string{OptAddr: tg.ip, OptKey: key, OptKnownHosts: kh}
	}

	var steps stepLog
	began := time.Now()
	mgr, err := d.Create(ctx, machine.Spec{Name: "m1", Cluster: "c", Role: machine.RoleManager, Options: opts(mgrT)}, steps.add)
	if err != nil {
		t.Fatalf("create the manager: %v", err)
	}
	t.Logf("manager made in %s: %s", time.Since(began).Round(time.Millisecond), steps.String())
	if mgr.Address != mgrT.ip || !strings.HasPrefix(mgr.AdminToken, "BERTHADM-") || len(mgr.CACert) == 0 {
		t.Fatalf("manager host: address %q (want %q), admin token %t, CA %d bytes", mgr.Address, mgrT.ip, mgr.AdminToken != "", len(mgr.CACert))
	}
	// The admin token and join token are gone from the host once it is ready.
	if out := mgrT.sh(t, "ls /run/berth-machine-* 2>/dev/null; grep -rl --exclude=berth BERTHADM- "+baseDir+" 2>/dev/null; true"); out != "" {
		t.Fatalf("secrets left on the manager host: %s", out)
	}
	c := apiClient(t, mgr)
	toks, err := c.Tokens(ctx)
	if err != nil {
		t.Fatalf("read the join tokens: %v", err)
	}

	steps = stepLog{}
	agSpec := machine.Spec{Name: "a1", Cluster: "c", Role: machine.RoleAgent, Labels: map[string]string{"machine": "a1"},
		Join: machine.Join{Addr: net.JoinHostPort(mgr.Address, fmt.Sprint(machine.ClusterPort)), Token: toks.Worker}, Options: opts(agT)}
	// The agent's host is reached as a user who may sudo: every command
	// of the driver there goes through sudo -n.
	agSpec.Options[OptUser] = "deploy"
	began = time.Now()
	ag, err := d.Create(ctx, agSpec, steps.add)
	if err != nil {
		t.Fatalf("create the agent: %v", err)
	}
	t.Logf("agent made in %s: %s", time.Since(began).Round(time.Millisecond), steps.String())
	if owner := agT.sh(t, "stat -c %U "+baseDir+"/a1/berth"); owner != "root" {
		t.Errorf("berth on the host belongs to %s, not root (through sudo)", owner)
	}
	if ag.DockerHost != "" || ag.Address != agT.ip || ag.Local[localSystemd] != "false" {
		t.Errorf("agent host: docker %q (the target has no docker), address %q, systemd %q", ag.DockerHost, ag.Address, ag.Local[localSystemd])
	}
	for _, want := range []string{"connect to", "check the host", "copy berth", "start berth", "wait until the node is ready"} {
		if !strings.Contains(steps.String(), want) {
			t.Errorf("progress has no step %q: %s", want, steps.String())
		}
	}
	node := waitNode(ctx, t, c, "a1")
	if node.Labels["machine"] != "a1" || !strings.HasPrefix(node.Address, agT.ip+":") {
		t.Fatalf("node a1: labels %v, address %q (want the target's %s)", node.Labels, node.Address, agT.ip)
	}

	// An exec task runs on the ssh host: it leaves its hostname there.
	app := &types.App{Name: "hello", Services: []*types.Service{{
		Name: "s", Driver: types.DriverExec, Mode: types.ModeReplicated, Replicas: 1,
		Command:   []string{"/bin/sh", "-c", "hostname > /tmp/berth-ran; exec sleep 600"},
		Placement: types.Placement{Constraints: []string{"node.labels.machine==a1"}},
	}}}
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatalf("submit the app: %v", err)
	}
	waitFor(t, 60*time.Second, "the task to run on a1", func() error {
		tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: "hello"})
		if err != nil {
			return err
		}
		for _, tk := range tasks {
			if tk.State == types.TaskRunning && tk.NodeID == node.ID {
				return nil
			}
		}
		return fmt.Errorf("tasks: %s", taskStates(tasks))
	})
	// Running is reported once the process started, maybe before its
	// first line ran.
	waitFor(t, 10*time.Second, "the task's file on a1", func() error {
		var out bytes.Buffer
		code, err := d.Exec(ctx, ag, []string{"cat", "/tmp/berth-ran"}, machine.Stdio{Out: &out, Err: &out})
		if err != nil || code != 0 || strings.TrimSpace(out.String()) != agT.name {
			return fmt.Errorf("exec cat /tmp/berth-ran: code %d, err %v, output %q (want %q)", code, err, out.String(), agT.name)
		}
		return nil
	})
	if code, _ := d.Exec(ctx, ag, []string{"sh", "-c", "exit 3"}, machine.Stdio{}); code != 3 {
		t.Fatalf("exec exit 3 gave code %d", code)
	}

	checkState(ctx, t, d, ag, machine.StateRunning)
	// No process on either host shows a join token on its command line:
	// berth read them from files, gone now that the nodes are ready.
	for _, tg := range []target{mgrT, agT} {
		cmdlines := tg.sh(t, "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; true")
		if tg == agT && !strings.Contains(cmdlines, "--token-file") || strings.Contains(cmdlines, toks.Worker) || strings.Contains(cmdlines, toks.Manager) {
			t.Fatalf("command lines on %s: want --token-file and no token: %s", tg.name, cmdlines)
		}
		if left := tg.sh(t, "ls "+baseDir+"/*/"+machine.JoinTokenFile+" 2>/dev/null; true"); left != "" {
			t.Fatalf("token files left on %s once the node is ready: %s", tg.name, left)
		}
	}
	// berth runs under berth's own supervisor, which restarts it after a
	// kill -9; it registers again with no token (the token left the host
	// once the node was ready).
	killed := killSupervised(t, agT, "a1")
	waitRegistered(t, agT, "a1", 2)
	if pid := supervisedPid(t, agT, "a1"); pid == killed {
		t.Fatalf("berth still has the killed pid %s", pid)
	}
	if err := d.Stop(ctx, ag); err != nil {
		t.Fatal(err)
	}
	checkState(ctx, t, d, ag, machine.StateStopped)
	if left := agT.sh(t, `for p in /proc/[0-9]*; do [ "${p#/proc/}" = $$ ] && continue; case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in *"a1/berth"*|*a1/run.sh*) echo ${p#/proc/};; esac; done; true`); left != "" {
		t.Fatalf("processes of a1 left after stop: %s", left)
	}
	if err := d.Start(ctx, ag); err != nil {
		t.Fatal(err)
	}
	checkState(ctx, t, d, ag, machine.StateRunning)
	waitRegistered(t, agT, "a1", 3)

	t.Run("bad input", func(t *testing.T) { badInput(ctx, t, d, dir, mgrT, agT, agSpec) })
	t.Run("remove with no record", func(t *testing.T) {
		// A Create whose caller died before it kept the record: HostFor
		// rebuilds enough of it from the spec for Remove to clear the host.
		before := mgrT.leftovers(t)
		spec := with(agSpec, "a10", OptAddr, mgrT.ip)
		if _, err := d.Create(ctx, spec, nil); err != nil {
			t.Fatal(err)
		}
		h, err := HostFor(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Remove(ctx, h, true); err != nil {
			t.Fatal(err)
		}
		if left := mgrT.leftovers(t); left != before {
			t.Errorf("left behind on %s:\n%s\n(before: %s)", mgrT.name, left, before)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		// A manager that never answers keeps the agent retrying; the
		// caller gives up (Ctrl-C) and Create still removes what it made.
		before := mgrT.leftovers(t)
		spec := with(agSpec, "a14", OptAddr, mgrT.ip)
		spec.Join.Addr = unusedIP(t, mgrT.ip) + ":7702"
		cctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		defer cancel()
		_, err := d.Create(cctx, spec, nil)
		if err == nil || !strings.Contains(err.Error(), "wait until the node is ready: stopped waiting (context deadline exceeded)") {
			t.Fatalf("Create: %v", err)
		}
		t.Logf("error: %v", err)
		if left := mgrT.leftovers(t); left != before {
			t.Errorf("left behind on %s:\n%s\n(before: %s)", mgrT.name, left, before)
		}
	})
	t.Run("host key regenerated", func(t *testing.T) { regeneratedKey(ctx, t, d, agT, ag, with(agSpec, "a9")) })
	t.Run("ssh-agent", func(t *testing.T) { viaAgent(ctx, t, dir, key, ag) })

	// A second manager joins (on the agent's host: its ports are free
	// there) and is a voter once Create returns.
	m2, err := d.Create(ctx, machine.Spec{Name: "m2", Cluster: "c", Role: machine.RoleManager, Options: opts(agT),
		Join: machine.Join{Addr: agSpec.Join.Addr, Token: toks.Manager}}, nil)
	if err != nil {
		t.Fatalf("create a joining manager: %v", err)
	}
	if m2.AdminToken != "" || m2.Address != agT.ip {
		t.Errorf("joined manager: admin token %t (only a first manager has one), address %q", m2.AdminToken != "", m2.Address)
	}
	members, err := c.Members(ctx)
	if err != nil || len(members) != 2 {
		t.Fatalf("members after m2 joined: %+v, %v", members, err)
	}
	if err := d.Remove(ctx, m2, false); err != nil {
		t.Fatal(err)
	}

	for _, h := range []*machine.Host{ag, mgr} {
		if err := d.Remove(ctx, h, false); err != nil {
			t.Fatalf("remove %s: %v", h.Name, err)
		}
	}
	for _, tg := range []target{mgrT, agT} {
		if left := tg.leftovers(t); left != "" {
			t.Errorf("left on %s after remove: %s", tg.name, left)
		}
	}
	checkState(ctx, t, d, ag, machine.StateMissing)
	if err := d.Remove(ctx, ag, true); err != nil {
		t.Errorf("remove -f of a removed host: %v", err)
	}
}

// badInput: each failure is one clear sentence and leaves nothing behind.
func badInput(ctx context.Context, t *testing.T, d *Driver, dir string, mgrT, agT target, good machine.Spec) {
	wrongKey, _ := newKey(t, dir, "wrong")
	// A known_hosts that pairs the agent's address with the manager's key:
	// to the driver, the agent's host key changed.
	changed := knownHosts(t, dir, "changed", map[string]xssh.PublicKey{agT.ip: mgrT.hostKey(t)})
	empty := knownHosts(t, dir, "empty", nil)
	unused := freeLoopbackPort(t)
	notAKey := knownHosts(t, dir, "not-a-key", nil)
	badToken := good
	badToken.Name = "a-bad-token"
	badToken.Join.Token = "BERTH-1-bogus-w-bogus"
	before := agT.leftovers(t)
	quick := New(Config{Binary: d.cfg.Binary, DialTimeout: 3 * time.Second, ReadyTimeout: 8 * time.Second})
	for _, tc := range []struct {
		name string
		d    *Driver
		spec machine.Spec
		want []string
	}{
		{"wrong key", d, with(good, "a2", OptKey, wrongKey), []string{"connect to", "deploy@" + agT.ip + ":22 refused the key " + wrongKey, "~deploy/.ssh/authorized_keys"}},
		{"no host at the address", d, with(good, "a8", OptAddr, unusedIP(t, agT.ip)), []string{"cannot reach " + unusedIP(t, agT.ip) + ":22"}},
		{"nothing answers", d, with(good, "a3", OptAddr, fmt.Sprintf("127.0.0.1:%d", unused)), []string{"cannot reach 127.0.0.1:", "connection refused"}},
		{"changed host key", d, with(good, "a4", OptKnownHosts, changed),
			[]string{"CHANGED", xssh.FingerprintSHA256(mgrT.hostKey(t)), xssh.FingerprintSHA256(agT.hostKey(t))}},
		{"unknown host", d, with(good, "a5", OptKnownHosts, empty), []string{"is not in " + empty, "key is SHA256:", "ssh-keyscan -p 22 " + agT.ip, OptInsecure}},
		{"no known_hosts file", d, with(good, "a13", OptKnownHosts, dir+"/none"), []string{"read the known_hosts file " + dir + "/none: no such file", "ssh-keyscan -p 22 " + agT.ip}},
		{"not a key file", d, with(good, "a6", OptKey, notAKey), []string{"is not a private key"}},
		{"missing key file", d, with(good, "a7", OptKey, dir+"/none"), []string{"read the SSH key", "no such file"}},
		{"no sudo", d, with(good, "a12", OptUser, "guest"), []string{"check the host", "guest may not run commands as root with sudo -n"}},
		{"name in use", d, with(good, "a1"), []string{"already has " + baseDir + "/a1"}},
		{"join refused", quick, badToken, []string{"wait until the node is ready", "keeps exiting", "wrong format"}},
		{"port in use", quick, with(good, "a11"), []string{"wait until the node is ready", "keeps exiting", "address already in use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.d.Create(ctx, tc.spec, nil)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error is more than one line: %q", msg)
			}
			if tc.name == "name in use" && !errors.Is(err, machine.ErrExists) {
				t.Errorf("error does not wrap machine.ErrExists")
			}
			if left := agT.leftovers(t); left != before {
				t.Errorf("left behind on %s:\n%s\n(before: %s)", agT.name, left, before)
			}
		})
	}
}

// with is spec under another name, with option k set to v.
func with(spec machine.Spec, name string, kv ...string) machine.Spec {
	spec.Name = name
	opts := map[string]string{}
	for k, v := range spec.Options {
		opts[k] = v
	}
	spec.Options = opts
	for i := 0; i+1 < len(kv); i += 2 {
		spec.Options[kv[i]] = kv[i+1]
	}
	return spec
}

// regeneratedKey gives the target new host keys (as a reinstall would):
// Create and Status then refuse it, naming the old and the new key.
func regeneratedKey(ctx context.Context, t *testing.T, d *Driver, tg target, h *machine.Host, spec machine.Spec) {
	old := xssh.FingerprintSHA256(tg.hostKey(t))
	before := tg.leftovers(t)
	tg.sh(t, "cp -a /etc/ssh /etc/ssh.orig && rm /etc/ssh/ssh_host_* && ssh-keygen -A -q")
	defer tg.sh(t, "rm -rf /etc/ssh && mv /etc/ssh.orig /etc/ssh")
	fresh := xssh.FingerprintSHA256(tg.hostKey(t))
	if fresh == old {
		t.Fatal("ssh-keygen -A made the same key")
	}
	_, err := d.Create(ctx, spec, nil)
	_, serr := d.Status(ctx, h)
	for _, e := range []error{err, serr} {
		if e == nil {
			t.Fatal("a host with a new key was accepted")
		}
		for _, w := range []string{"CHANGED", old, fresh} {
			if !strings.Contains(e.Error(), w) {
				t.Errorf("error %q does not say %q", e, w)
			}
		}
	}
	if left := tg.leftovers(t); left != before {
		t.Errorf("left behind on %s:\n%s\n(before: %s)", tg.name, left, before)
	}
}

// viaAgent: with no key file, the driver logs in with the keys of the
// ssh-agent at SSH_AUTH_SOCK (here one the test serves).
func viaAgent(ctx context.Context, t *testing.T, dir, keyFile string, h *machine.Host) {
	sock := serveAgent(t, dir, keyFile)
	d := New(Config{DialTimeout: 3 * time.Second, Getenv: func(k string) string {
		if k == "SSH_AUTH_SOCK" {
			return sock
		}
		return ""
	}})
	noKey := *h
	noKey.Local = map[string]string{}
	for k, v := range h.Local {
		noKey.Local[k] = v
	}
	noKey.Local[localKey] = ""
	if st, err := d.Status(ctx, &noKey); err != nil || st != machine.StateRunning {
		t.Fatalf("status through the ssh-agent: %s, %v", st, err)
	}
	d = New(Config{DialTimeout: 3 * time.Second, Getenv: func(string) string { return "" }})
	_, err := d.Status(ctx, &noKey)
	if err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK is not set") {
		t.Fatalf("with no key and no agent: %v", err)
	}
}
