package cluster

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/cluster/harness"
)

// TestSnapshotSaveRestore saves the cluster state, changes it (one app
// removed, another added), restores the file, and checks that every
// manager has the saved state again, the agents run exactly its tasks, and
// the cluster still takes writes.
func TestSnapshotSaveRestore(t *testing.T) {
	c := start(t, harness.Options{Agents: harness.Zones("a", "b")})
	leader := c.Leader(t, 10*time.Second)
	follower := otherThan(c.Live(), leader)

	kept := writeApp(t, c, "kept", service{name: "web", replicas: 2})
	c.MustRun(t, leader, "up", "-d", "-f", kept)
	harness.WaitFor(t, time.Minute, "kept web running", c.ExpectRunning(leader, "kept", "web", 2))

	file := filepath.Join(c.Dir(), "state.snap")
	c.MustRun(t, follower, "snapshot", "save", file)
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		t.Fatalf("snapshot save wrote no file: %v", err)
	}

	later := writeApp(t, c, "later", service{name: "web", replicas: 1})
	c.MustRun(t, leader, "up", "-d", "-f", later)
	harness.WaitFor(t, time.Minute, "later web running", c.ExpectRunning(leader, "later", "web", 1))
	c.MustRun(t, leader, "-p", "kept", "down")
	harness.WaitFor(t, time.Minute, "only later left", all(c.ExpectApps(leader, "later"), expectProcesses(c, 1)))

	c.MustRun(t, follower, "snapshot", "restore", file)
	for _, m := range c.Live() {
		harness.WaitFor(t, 30*time.Second, m.Name+" has the saved apps", c.ExpectApps(m, "kept"))
	}
	// Well under the agents' 30s blocking-query wait: a restore must wake
	// the agents' watches, not leave them to time out.
	harness.WaitFor(t, 20*time.Second, "the saved tasks, and only them, run", all(
		c.ExpectRunning(leader, "kept", "web", 2),
		expectProcesses(c, 2),
	))

	c.MustRun(t, leader, "-p", "kept", "scale", "web=3")
	harness.WaitFor(t, time.Minute, "the restored cluster takes writes", all(
		c.ExpectRunning(leader, "kept", "web", 3),
		expectProcesses(c, 3),
	))
}
