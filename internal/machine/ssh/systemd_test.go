package ssh

import (
	"context"
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
	tg := startSystemdTarget(t, image, network, pub)
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

// startSystemdTarget boots the systemd image; it skips the test where
// systemd does not come up in a container.
func startSystemdTarget(t *testing.T, image, network string, pub xssh.PublicKey) target {
	t.Helper()
	name := "berth-ssh-test-" + randHex(4)
	args := []string{"run", "-d", "--name", name, "--network", network, "--hostname", name, "--tmpfs", "/run", "--tmpfs", "/run/lock"}
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &fs); err == nil && fs.Type == 0x63677270 { // cgroup2
		// systemd needs a writable cgroup2 tree of its own.
		args = append(args, "--privileged", "--cgroupns", "private")
	} else {
		args = append(args, "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro")
	}
	docker(t, append(args, image)...)
	t.Cleanup(func() { _, _ = dockerErr("rm", "-f", name) })
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
