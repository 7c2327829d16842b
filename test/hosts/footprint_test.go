package hosts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// footprint is what a cluster of hosts could leave on the machine, limited
// to what is this test's (other tests make hosts on the machine at the same
// time): namespaces of the cluster's name, the links its hosts' records
// name, mounts, processes and files under the test's home, and iptables
// rules naming its bridge.
type footprint struct {
	netns, links, mounts, procs, files, rules []string
}

func footprintOf(t *testing.T, home, cluster string, links ...string) footprint {
	t.Helper()
	var f footprint
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "berth-"+cluster+"-") {
			f.netns = append(f.netns, e.Name())
		}
	}
	for _, l := range links {
		if _, err := os.Stat("/sys/class/net/" + l); err == nil {
			f.links = append(f.links, l)
		}
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, home) {
				f.mounts = append(f.mounts, l)
			}
		}
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(b, []byte(home)) {
			f.procs = append(f.procs, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	_ = filepath.Walk(home, func(p string, _ os.FileInfo, _ error) error {
		if p != home && p != filepath.Join(home, "berth") {
			f.files = append(f.files, p)
		}
		return nil
	})
	for _, table := range []string{"filter", "nat"} {
		out, _ := exec.Command("iptables", "-w", "-t", table, "-S").Output()
		for _, l := range strings.Split(string(out), "\n") {
			for _, link := range links {
				if strings.HasPrefix(link, "bb") && strings.Contains(l, link) {
					f.rules = append(f.rules, table+": "+l)
				}
			}
		}
	}
	return f
}

// allowStoreDirs drops from f the directories that outlive every cluster
// by design: the records' and hosts' roots (empty), the CLI's contexts
// file and the local driver's lock file.
func (f *footprint) allowStoreDirs(home string) {
	keep := []string{
		filepath.Join(home, "state"), filepath.Join(home, "state", "berth"),
		filepath.Join(home, "state", "berth", "machines"), filepath.Join(home, "state", "berth", "hosts"),
		filepath.Join(home, "state", "berth", "hosts", ".lock"),
		filepath.Join(home, "config"), filepath.Join(home, "config", "berth"),
		filepath.Join(home, "config", "berth", "contexts.json"),
	}
	f.files = slices.DeleteFunc(f.files, func(p string) bool { return slices.Contains(keep, p) })
}

// diff lists what after has and f has not.
func (f footprint) diff(after footprint) string {
	var b strings.Builder
	for _, part := range []struct {
		what          string
		before, after []string
	}{
		{"namespace", f.netns, after.netns}, {"link", f.links, after.links}, {"mount", f.mounts, after.mounts},
		{"process", f.procs, after.procs}, {"file", f.files, after.files}, {"iptables rule", f.rules, after.rules},
	} {
		for _, x := range part.after {
			if !slices.Contains(part.before, x) {
				fmt.Fprintf(&b, "%s %s\n", part.what, x)
			}
		}
	}
	return b.String()
}

// recordedLinks reads the links the local driver recorded for the
// cluster's hosts (their veths and the cluster's bridge).
func recordedLinks(t *testing.T, home, cluster string) []string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(home, "state", "berth", "machines", cluster, "*.json"))
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Local map[string]string `json:"local"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			continue // the cluster record
		}
		for _, k := range []string{"veth", "bridge"} {
			if l := rec.Local[k]; l != "" && !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}
