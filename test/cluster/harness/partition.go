package harness

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Host is the manager's IP address (127.0.N.i).
func (m *Manager) Host() string {
	host, _, _ := net.SplitHostPort(m.API)
	return host
}

// Partition cuts manager m off from the other managers of c: iptables
// drops what m sends to their addresses and what they send to m's. On
// loopback every connection's source is 127.0.0.1 whoever dials, so the
// rules tell processes apart by their cgroup (Options.Partitionable), on
// the OUTPUT chain; one dropped direction is enough to break TCP. The test
// itself still reaches every API. heal removes the rules; they are also
// removed when tb ends.
func (c *Cluster) Partition(tb testing.TB, m *Manager) (heal func()) {
	tb.Helper()
	var rules [][]string
	for _, o := range c.Managers {
		if o == m {
			continue
		}
		if m.cgroup == "" || o.cgroup == "" {
			tb.Fatal("Partition needs a cluster started with Options.Partitionable")
		}
		rules = append(rules, dropRule(m.cgroup, o.Host()), dropRule(o.cgroup, m.Host()))
	}
	var added [][]string
	healed := false
	heal = func() {
		if healed {
			return
		}
		healed = true
		for _, r := range added {
			if err := iptables("-D", r); err != nil {
				tb.Errorf("remove the partition rule %v: %v", r, err)
			}
		}
	}
	tb.Cleanup(heal)
	for _, r := range rules {
		if err := iptables("-I", r); err != nil {
			heal()
			tb.Skipf("cannot add iptables rules here: %v", err)
		}
		added = append(added, r)
	}
	return heal
}

// dropRule is an OUTPUT rule (without the verb) that drops packets that
// processes of cgroup send to dst.
func dropRule(cgroup, dst string) []string {
	root, _ := cgroupRoot()
	rel, _ := filepath.Rel(root, cgroup)
	return []string{"OUTPUT", "-m", "cgroup", "--path", rel, "-d", dst, "-j", "DROP"}
}

func iptables(verb string, rule []string) error {
	args := append([]string{"-w", verb}, rule...)
	out, err := exec.Command("iptables", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// newCgroup creates a cgroup v2 directory for one process of tb (the
// cluster's cleanup removes it, after killing the process). A machine that
// cannot do this skips tb.
func newCgroup(tb testing.TB, name string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("a partition needs root, for cgroups and iptables")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		tb.Skip("a partition needs iptables: ", err)
	}
	root, err := cgroupRoot()
	if err != nil {
		tb.Skip("a partition needs cgroup v2: ", err)
	}
	dir, err := os.MkdirTemp(root, "berth-test-"+name+"-")
	if err != nil {
		tb.Skip("cannot create a cgroup: ", err)
	}
	return dir
}

// removeCgroup removes dir once its processes are gone (a killed process
// leaves its cgroup a moment after it is reaped).
func removeCgroup(tb testing.TB, dir string) {
	err := Poll(10*time.Second, func() error { return os.Remove(dir) })
	if err != nil {
		tb.Errorf("remove cgroup %s: %v", dir, err)
	}
}

// cgroupRoot finds where cgroup v2 is mounted.
func cgroupRoot() (string, error) {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("no cgroup2 file system in /proc/mounts")
}
