package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/supervise"
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
	return api.NewClient(machine.HostPort(h.Address, machine.APIPort),
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
	nobody := machine.HostPort(subnet.Addr().Next().Next().Next().Next().String(), machine.ClusterPort)
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
