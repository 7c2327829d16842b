package ssh

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/machine"
	xssh "golang.org/x/crypto/ssh"
)

// TestProvisionUnderSystemd: on a host whose init is systemd, berth runs
// as a unit of its own (here a first manager in a container booted with
// systemd); stop, start and remove act on that unit, and remove leaves
// neither it nor anything else.
func TestProvisionUnderSystemd(t *testing.T) {
	needDocker(t)
	dir := t.TempDir()
	image := testImage(t, "sshd-systemd", "Dockerfile")
	bin := buildBerth(t, dir)
	network, _ := testNetwork(t)
	key, pub := newKey(t, dir, "id_ed25519")
	tg := startSystemdTarget(t, image, network, pub, false)
	kh := knownHosts(t, dir, "known_hosts", map[string]xssh.PublicKey{tg.ip: tg.hostKey(t)})
	d := New(Config{Binary: bin, DialTimeout: 3 * time.Second, ReadyTimeout: 45 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	spec := machine.Spec{Name: "m1", Cluster: "c", Role: machine.RoleManager, Options: map[string]string{OptAddr: tg.ip, OptKey: key, OptKnownHosts: kh}}
	h, err := d.Create(ctx, spec, nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if h.Local[localSystemd] != "true" || h.AdminToken == "" {
		t.Fatalf("host: systemd %q, admin token %t", h.Local[localSystemd], h.AdminToken != "")
	}
	unit := newLayout("m1").unit()
	if got := tg.sh(t, "systemctl is-active "+unit+" || true"); got != "active" {
		t.Fatalf("unit %s is %q", unit, got)
	}
	if _, err := apiClient(t, h).Tokens(ctx); err != nil {
		t.Fatalf("the manager's API: %v", err)
	}
	// The unit runs berth's supervisor, which brings a killed berth back.
	if main := tg.sh(t, "tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value "+unit+")/cmdline"); !strings.Contains(main, "m1/berth machine-supervise ") {
		t.Fatalf("the unit's main process is %q, not berth's supervisor", main)
	}
	killed := killSupervised(t, tg, "m1")
	waitFor(t, 30*time.Second, "berth restarted and its API answering", func() error {
		if now, err := supervisedPidErr(t, tg, "m1"); err != nil || now == killed {
			return fmt.Errorf("berth pid %s (killed %s): %v", now, killed, err)
		}
		_, err := apiClient(t, h).Tokens(ctx)
		return err
	})
	if err := d.Stop(ctx, h); err != nil {
		t.Fatal(err)
	}
	checkState(ctx, t, d, h, machine.StateStopped)
	if err := d.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	checkState(ctx, t, d, h, machine.StateRunning)
	if err := d.Remove(ctx, h, false); err != nil {
		t.Fatal(err)
	}
	if left := tg.leftovers(t) + tg.sh(t, "ls /etc/systemd/system/berth-machine-* 2>/dev/null; systemctl list-units --all --no-legend 'berth-machine-*'; true"); left != "" {
		t.Errorf("left after remove: %s", left)
	}
}

// TestInstallDocker: install-docker puts Debian's docker.io on a host
// (a privileged container booted with systemd, so its own dockerd can
// run), and the agent there offers the docker driver. It downloads the
// packages, so it runs only with BERTH_TEST_INSTALL_DOCKER=1.
func TestInstallDocker(t *testing.T) {
	if os.Getenv("BERTH_TEST_INSTALL_DOCKER") != "1" {
		t.Skip("downloads docker.io from Debian's mirror: set BERTH_TEST_INSTALL_DOCKER=1")
	}
	needDocker(t)
	dir := t.TempDir()
	image := testImage(t, "sshd-systemd", "Dockerfile")
	bin := buildBerth(t, dir)
	network, _ := testNetwork(t)
	key, pub := newKey(t, dir, "id_ed25519")
	tg := startSystemdTarget(t, image, network, pub, true)
	kh := knownHosts(t, dir, "known_hosts", map[string]xssh.PublicKey{tg.ip: tg.hostKey(t)})
	d := New(Config{Binary: bin, DialTimeout: 3 * time.Second, ReadyTimeout: 45 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts := map[string]string{OptAddr: tg.ip, OptKey: key, OptKnownHosts: kh}
	mgr, err := d.Create(ctx, machine.Spec{Name: "m1", Role: machine.RoleManager, Options: opts}, nil)
	if err != nil {
		t.Fatalf("create the manager: %v", err)
	}
	c := apiClient(t, mgr)
	toks, err := c.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agOpts := map[string]string{OptInstallDocker: "true"}
	for k, v := range opts {
		agOpts[k] = v
	}
	var steps stepLog
	began := time.Now()
	ag, err := d.Create(ctx, machine.Spec{Name: "a1", Role: machine.RoleAgent, Options: agOpts,
		Join: machine.Join{Addr: tg.ip + ":7702", Token: toks.Worker}}, steps.add)
	if err != nil {
		t.Fatalf("create the agent: %v", err)
	}
	t.Logf("agent with docker made in %s: %s", time.Since(began).Round(time.Second), steps.String())
	if ag.DockerHost != "ssh://root@"+tg.ip+":22" {
		t.Errorf("DockerHost %q", ag.DockerHost)
	}
	node := waitNode(ctx, t, c, "a1")
	if !strings.Contains(strings.Join(node.Drivers, ","), "docker") {
		t.Fatalf("node a1 offers %v, not docker", node.Drivers)
	}
	for _, h := range []*machine.Host{ag, mgr} {
		if err := d.Remove(ctx, h, false); err != nil {
			t.Fatal(err)
		}
	}
}

// startSystemdTarget boots the systemd image (privileged when asked, or
// where the cgroup v2 tree must be its own); it skips the test where
// systemd does not come up in a container.
func startSystemdTarget(t *testing.T, image, network string, pub xssh.PublicKey, privileged bool) target {
	t.Helper()
	name := "berth-ssh-test-" + randHex(4)
	args := []string{"run", "-d", "--name", name, "--network", network, "--hostname", name, "--tmpfs", "/run", "--tmpfs", "/run/lock"}
	var fs syscall.Statfs_t
	if privileged {
		args = append(args, "--privileged")
	} else if err := syscall.Statfs("/sys/fs/cgroup", &fs); err == nil && fs.Type == 0x63677270 { // cgroup2
		// systemd needs a writable cgroup2 tree of its own.
		args = append(args, "--privileged", "--cgroupns", "private")
	} else {
		args = append(args, "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro")
	}
	t.Cleanup(func() { _, _ = dockerErr("rm", "-f", name) })
	if _, err := dockerErr(append(args, image)...); err != nil {
		// An engine that refuses privileged containers (one itself in a
		// container) cannot boot systemd this way.
		t.Skipf("cannot start a systemd container here: %v", err)
	}
	ip := docker(t, "inspect", name, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
	tg := target{name: name, ip: ip}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := dockerErr("exec", name, "systemctl", "is-active", "ssh")
		if out == "active" {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := dockerErr("logs", "--tail", "5", name)
			t.Skipf("systemd does not boot in a container here (ssh unit %q): %s", out, strings.ReplaceAll(logs, "\n", " | "))
		}
		time.Sleep(300 * time.Millisecond)
	}
	key := strings.TrimSpace(string(xssh.MarshalAuthorizedKey(pub)))
	tg.sh(t, "mkdir -p -m 700 /root/.ssh && printf '%s\\n' '"+key+"' > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys")
	return tg
}
