package local

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/supervise"
	"golang.org/x/sys/unix"
)

// makeNamespace makes the host's namespace and its veth to the bridge:
// eth0 inside with the host's address, loopback up, default route via the
// bridge.
func (d *Driver) makeNamespace(ctx context.Context, h *machine.Host, addr netip.Addr, subnet netip.Prefix) error {
	ns, veth, br := h.Local[keyNetns], h.Local[keyVeth], h.Local[keyBridge]
	peer := "vp" + veth[2:]
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", peer},
		{"ip", "link", "set", peer, "netns", ns},
		{"ip", "link", "set", veth, "master", br, "up"},
		{"ip", "-n", ns, "link", "set", peer, "name", "eth0"},
		{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(addr, subnet.Bits()).String(), "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "route", "add", "default", "via", gateway(subnet).String()},
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// nsenter is the prefix that runs a command in the host's namespace.
// Not `ip netns exec`: it also makes a mount namespace and remounts /sys,
// which hides the cgroups from dockerd.
func nsenter(h *machine.Host) []string {
	return []string{"nsenter", "--net=/run/netns/" + h.Local[keyNetns], "--"}
}

// hostEnv is the environment of what runs in a host: the machine's, with
// an agent host's engine as DOCKER_HOST (a manager host has none), and
// without the caller's BERTH_ settings (its token, its manager's address),
// which are not the host's.
func hostEnv(h *machine.Host, p paths) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") && !strings.HasPrefix(kv, "BERTH_") {
			env = append(env, kv)
		}
	}
	if h.Role == machine.RoleAgent {
		env = append(env, "DOCKER_HOST="+p.dockerHost())
	}
	return env
}

// Exec runs cmd in the host's namespace with its engine as DOCKER_HOST.
func (d *Driver) Exec(ctx context.Context, h *machine.Host, cmd []string, stdio machine.Stdio) (int, error) {
	p, err := d.hostPaths(h)
	if err != nil {
		return -1, err
	}
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh"}
	}
	if _, err := os.Stat("/run/netns/" + h.Local[keyNetns]); err != nil {
		return -1, fmt.Errorf("host %s has no namespace: %w", h.Name, machine.ErrNotFound)
	}
	line := append(nsenter(h), cmd...)
	c := exec.CommandContext(ctx, line[0], line[1:]...)
	c.Env = hostEnv(h, p)
	c.Stdin, c.Stdout, c.Stderr = stdio.In, stdio.Out, stdio.Err
	err = c.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return -1, fmt.Errorf("run %s in host %s: %w", cmd[0], h.Name, err)
	}
	return 0, nil
}

// Remove tears the host down: its processes, the engine's mounts, its
// namespace and veth, its address (the last host of a cluster takes the
// bridge and rules), its directory. With force it goes on past failures.
func (d *Driver) Remove(ctx context.Context, h *machine.Host, force bool) error {
	p, err := d.hostPaths(h)
	if err != nil {
		return err
	}
	// Names are derived again rather than read from the record, so a
	// record can never make Remove delete what this driver did not make.
	ns, veth := netnsName(h.Cluster, h.Name), d.vethName(h.Cluster, h.Name)
	var errs []error
	fail := func(err error) bool {
		if err != nil {
			errs = append(errs, err)
		}
		return err != nil && !force
	}
	supervise.Stop(p.berthPid(), 15*time.Second)
	d.removeContainers(ctx, p)
	supervise.Stop(p.engineSupPid(), 30*time.Second)
	// A dead engine leaves its containers running under their shims.
	if fail(killContainers(p)) {
		return errors.Join(errs...)
	}
	if fail(killNamespace(ns)) {
		return errors.Join(errs...)
	}
	if fail(unmountUnder(p.dir)) {
		return errors.Join(errs...)
	}
	if _, err := os.Stat("/run/netns/" + ns); err == nil {
		if fail(run(ctx, "ip", "netns", "del", ns)) {
			return errors.Join(errs...)
		}
	}
	// The veth goes with the namespace, but not at once.
	if linkExists(veth) {
		if err := run(ctx, "ip", "link", "del", veth); err != nil && linkExists(veth) && fail(err) {
			return errors.Join(errs...)
		}
	}
	if fail(d.leaveNetwork(ctx, h.Cluster, h.Name)) {
		return errors.Join(errs...)
	}
	if fail(os.RemoveAll(p.dir)) {
		return errors.Join(errs...)
	}
	// The cluster's directory goes with its last host (network.json went
	// with the bridge); Remove fails if it is not empty, which is right.
	_ = os.Remove(filepath.Dir(p.dir))
	return errors.Join(errs...)
}

// killNamespace kills every process left in namespace ns (what a killed
// supervisor or engine left behind): berth made the namespace, so what
// runs in it is berth's.
func killNamespace(ns string) error {
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+ns, &st); err != nil {
		return nil
	}
	for try := 0; try < 50; try++ {
		pids := pidsIn(st.Ino)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(40 * time.Millisecond)
	}
	return fmt.Errorf("processes left in namespace %s after SIGKILL: %v", ns, pidsIn(st.Ino))
}

// removeContainers removes the host engine's containers while it answers:
// where the machine runs a containerd of its own, the host's engine uses
// it, and only the engine can take its containers out of it.
func (d *Driver) removeContainers(ctx context.Context, p paths) {
	if pingEngine(ctx, p.engineSock()) != nil {
		return
	}
	ps := exec.CommandContext(ctx, d.cfg.Docker, "ps", "-aq")
	ps.Env = withDockerHost(p.dockerHost())
	out, err := ps.Output()
	if ids := strings.Fields(string(out)); err == nil && len(ids) > 0 {
		rm := exec.CommandContext(ctx, d.cfg.Docker, append([]string{"rm", "-f", "-v"}, ids...)...)
		rm.Env = ps.Env
		_ = rm.Run() // what is left is killed below
	}
}

// killContainers kills what still runs of the host engine's containers:
// each container's cgroup path names its ID (cgroup v1 and v2).
func killContainers(p paths) error {
	ents, _ := os.ReadDir(filepath.Join(p.engineData(), "containers"))
	var ids []string
	for _, e := range ents {
		if len(e.Name()) == 64 {
			ids = append(ids, e.Name())
		}
	}
	if len(ids) == 0 {
		return nil
	}
	for try := 0; try < 50; try++ {
		pids := pidsOfContainers(ids)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(40 * time.Millisecond)
	}
	return fmt.Errorf("container processes left after SIGKILL: %v", pidsOfContainers(ids))
}

// pidsOfContainers lists the processes in the cgroups of containers ids.
func pidsOfContainers(ids []string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !supervise.Alive(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cgroup")
		if err != nil {
			continue
		}
		for _, id := range ids {
			if strings.Contains(string(b), id) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// pidsIn lists the processes whose network namespace has inode ino.
func pidsIn(ino uint64) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &st) == nil && st.Ino == ino && supervise.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountUnder detaches every mount under dir (the engine's overlays, shm,
// its namespaces' bind mounts), deepest first.
func unmountUnder(dir string) error {
	points := MountsUnder(dir)
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, mp := range points {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// MountsUnder lists the mount points under dir (for tests and checks).
func MountsUnder(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 5 {
			if mp := unescapeMount(f[4]); mp == dir || strings.HasPrefix(mp, dir+"/") {
				points = append(points, mp)
			}
		}
	}
	return points
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
