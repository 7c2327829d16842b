package agent

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/driver/docker"
	"github.com/berth-dev/berth/internal/types"
)

// testImage is made offline on the test machines; nothing can be pulled.
const testImage = "debian:bookworm-slim"

// TestWithDockerDriver runs containers through the docker driver the agent
// builds itself. It is skipped where no engine answers.
func TestWithDockerDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers")
	}
	probe, err := docker.New(context.Background(), docker.Config{NodeID: "probe", DataDir: t.TempDir()})
	if err != nil {
		t.Skipf("no docker engine: %v", err)
	}
	probe.Close()
	m := newFakeManager(t)
	cfg := testConfig(t, m, newFakeDriver("unused"))
	cfg.Drivers, cfg.DriverOverrides = nil, nil // the defaults: exec, and docker as it answers
	a, stop := runAgent(t, cfg)
	d := a.drivers[types.DriverDocker]
	if d == nil || a.drivers[types.DriverExec] == nil {
		t.Fatalf("drivers = %v, want docker and exec", a.driverNames())
	}
	scratch := t.TempDir()
	t.Cleanup(func() { removeTasks(a.NodeID(), scratch) })

	sleeper := &types.Service{Name: "sleeper", Image: testImage, Version: 1,
		Command: []string{"sleep", "60"}, StopGracePeriod: time.Second}
	missing := &types.Service{Name: "missing", Image: "berth-test/no-such-image:1", Version: 1}
	m.addService("app", sleeper)
	m.addService("app", missing)
	sleepers := m.addTasks(a.NodeID(), "app", sleeper, "sleeper", 1)
	missings := m.addTasks(a.NodeID(), "app", missing, "missing", 1)

	waitFor(t, "the container running", func() bool { return m.inState(types.TaskRunning, sleepers...) })
	waitFor(t, "the missing image rejected", func() bool { return m.inState(types.TaskRejected, missings...) })
	if got := m.task(missings[0]).Error; !strings.Contains(got, "berth-test/no-such-image:1 not found") {
		t.Errorf("rejection error = %q, want it to name the missing image", got)
	}
	m.setDesired(types.DesiredShutdown, sleepers...)
	waitFor(t, "the container shut down", func() bool { return m.inState(types.TaskShutdown, sleepers...) })
	m.dropTask(sleepers[0])
	waitFor(t, "the container removed", func() bool {
		_, err := d.Inspect(context.Background(), sleepers[0])
		return errors.Is(err, driver.ErrNotFound)
	})
	stop()
}

// removeTasks leaves nothing of a node's tasks behind in the engine.
func removeTasks(nodeID, dataDir string) {
	ctx := context.Background()
	d, err := docker.New(ctx, docker.Config{NodeID: nodeID, DataDir: dataDir})
	if err != nil {
		return
	}
	defer d.Close()
	list, _ := d.List(ctx)
	for _, st := range list {
		_ = d.Stop(ctx, st.TaskID, time.Second, "")
		_ = d.Remove(ctx, st.TaskID)
	}
	_ = d.RemoveApp(ctx, "app", true)
}
