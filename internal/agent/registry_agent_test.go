package agent

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// TestAgentServesRegistryEndpoint: an agent that may run docker tasks
// serves the endpoint on RegistryAddr, forwarding to the manager it
// joined with its node certificate; one without docker serves none.
func TestAgentServesRegistryEndpoint(t *testing.T) {
	m := newFakeManager(t)
	img := newTestImage(t, 500)
	m.registry.Add("app/web", img)
	cfg := testConfig(t, m, newFakeDriver(types.DriverDocker))
	cfg.RegistryAddr = "127.0.0.1:0"
	a, _ := runAgent(t, cfg)
	waitFor(t, "the registry endpoint", func() bool { return a.RegistryAddr() != "" })
	status, _, body := get(t, http.MethodGet, "http://"+a.RegistryAddr()+"/v2/app/web/manifests/"+img.Digest, nil)
	if status != http.StatusOK || !bytes.Equal(body, img.Manifest) {
		t.Fatalf("manifest through the agent: %d %s, want 200 and the manifest", status, body)
	}

	noDocker := testConfig(t, m, newFakeDriver("fake"))
	noDocker.RegistryAddr = "127.0.0.1:0"
	b, _ := runAgent(t, noDocker)
	if got := b.RegistryAddr(); got != "" {
		t.Errorf("an agent without docker serves the endpoint at %s, want none", got)
	}
}

// TestAgentRegistryPortInUse: a port in use stops the agent at start with
// an error that says what to do.
func TestAgentRegistryPortInUse(t *testing.T) {
	m := newFakeManager(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t, m, newFakeDriver(types.DriverDocker))
	cfg.RegistryAddr = busy.Addr().String()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = a.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "--registry-port") {
		t.Fatalf("Run = %v, want an error saying the port is in use and to give another --registry-port", err)
	}
}

// TestStartProgressReachesTheManager: what a driver says while a start
// waits (an image pull) is the task's progress at the manager, and it is
// gone once the task runs.
func TestStartProgressReachesTheManager(t *testing.T) {
	m := newFakeManager(t)
	fd := newFakeDriver("fake")
	const said = "pulling image web:1: 1 of 2 layers, 3 MB of 8 MB"
	var id string
	fd.startHook = func(ctx context.Context, cfg *driver.TaskConfig) error {
		if cfg.Progress == nil {
			t.Error("the driver is given no way to tell progress")
			return nil
		}
		cfg.Progress(said)
		deadline := time.Now().Add(15 * time.Second)
		for m.task(cfg.Task.ID).Progress != said {
			if time.Now().After(deadline) {
				t.Error("the progress did not reach the manager while the start waited")
				return nil
			}
			time.Sleep(5 * time.Millisecond)
		}
		return nil
	}
	a, _ := runAgent(t, testConfig(t, m, fd))
	web := service("web", 1)
	m.addService("app", web)
	ids := m.addTasks(a.NodeID(), "app", web, "web", 1)
	id = ids[0]
	waitFor(t, "the task running", func() bool { return m.inState(types.TaskRunning, id) })
	if got := m.task(id).Progress; got != "" {
		t.Errorf("a running task's progress = %q, want none", got)
	}
}
