package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	dockerdrv "github.com/berth-dev/berth/internal/driver/docker"
	"github.com/berth-dev/berth/internal/testimage"
)

// RequireDocker skips tb when no Docker engine answers, except in CI
// (CI=true), where the setup script must have started one: there tb fails,
// so a broken setup cannot pass as a green run.
func RequireDocker(tb testing.TB) {
	tb.Helper()
	out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("no Docker engine answers (%v: %s); run scripts/setup.sh", err, strings.TrimSpace(string(out)))
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// TestImage builds (or finds, by its tag) the FROM scratch test app image.
func TestImage(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	img, err := testimage.Ensure(ctx)
	if err != nil {
		tb.Fatalf("build the test image: %v", err)
	}
	return img
}

// Docker runs the docker CLI and returns its trimmed output.
func Docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, s)
	}
	return s, nil
}

// Lines splits command output into its non-empty lines.
func Lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Docker object kinds AppObjects lists.
const (
	KindContainer = "container"
	KindNetwork   = "network"
	KindVolume    = "volume"
)

// AppObjects lists the sorted IDs of the app's containers (in any state),
// networks or volumes, found by the label berth puts on each.
func AppObjects(tb testing.TB, kind, app string) []string {
	tb.Helper()
	return ObjectsLabelled(tb, kind, dockerdrv.LabelApp+"="+app)
}

// ObjectsLabelled lists the sorted IDs of the containers (in any state),
// networks or volumes with label ("key=value").
func ObjectsLabelled(tb testing.TB, kind, label string) []string {
	tb.Helper()
	args := []string{kind, "ls", "-q", "--filter", "label=" + label}
	if kind == KindContainer {
		args = []string{"ps", "-aq", "--no-trunc", "--filter", "label=" + label}
	}
	out, err := Docker(args...)
	if err != nil {
		tb.Fatal(err)
	}
	ids := Lines(out)
	slices.Sort(ids)
	return ids
}

// CleanupDocker removes, when tb ends, whatever the app left in Docker, so a
// failed test does not disturb the next run. Call it before StartCluster:
// cleanups run last-registered first, and a server still running would
// replace what this removes.
func CleanupDocker(tb testing.TB, app string) {
	tb.Cleanup(func() { RemoveLabelled(tb, dockerdrv.LabelApp+"="+app) })
}

// RemoveLabelled removes every container, network and volume with label
// ("key=value"), in that order. Containers are stopped before they are
// removed: Docker 20.10, removing many running containers at once, can keep
// stale endpoints that block the network's removal until dockerd restarts.
func RemoveLabelled(tb testing.TB, label string) {
	tb.Helper()
	if ids := ObjectsLabelled(tb, KindContainer, label); len(ids) > 0 {
		if _, err := Docker(append([]string{"stop", "--time", "2"}, ids...)...); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	}
	remove := map[string][]string{
		KindContainer: {"rm", "-f", "-v"},
		KindNetwork:   {"network", "rm"},
		KindVolume:    {"volume", "rm", "-f"},
	}
	for _, kind := range []string{KindContainer, KindNetwork, KindVolume} {
		ids := ObjectsLabelled(tb, kind, label)
		if len(ids) == 0 {
			continue
		}
		if _, err := Docker(append(remove[kind], ids...)...); err != nil {
			tb.Logf("cleanup: %v", err)
		}
	}
}

// EngineLeakedNetwork reports whether network id is one Docker 20.10 leaked
// (moby/moby#42119): no container is on it, yet its removal fails with
// "has active endpoints", as it will until dockerd restarts. Tests that
// check a teardown left nothing accept such a network: nobody but the
// engine can remove it.
func EngineLeakedNetwork(id string) bool {
	n, err := Docker("network", "inspect", "--format", "{{len .Containers}}", id)
	if err != nil || strings.TrimSpace(n) != "0" {
		return false
	}
	_, err = Docker("network", "rm", id)
	return err != nil && strings.Contains(err.Error(), "active endpoints")
}

// ContainerState is what docker inspect says of one container.
type ContainerState struct {
	ID        string
	Service   string // berth's service label
	StartedAt string
	Running   bool
	Networks  map[string]string // network name -> IP address
}

// InspectContainer asks Docker about one container.
func InspectContainer(id string) (ContainerState, error) {
	out, err := Docker("inspect", "--format", "{{json .}}", id)
	if err != nil {
		return ContainerState{}, err
	}
	var raw struct {
		ID     string `json:"Id"`
		Config struct{ Labels map[string]string }
		State  struct {
			Running   bool
			StartedAt string
		}
		NetworkSettings struct {
			Networks map[string]struct{ IPAddress string }
		}
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return ContainerState{}, fmt.Errorf("decode docker inspect %s: %w", id, err)
	}
	st := ContainerState{ID: raw.ID, Service: raw.Config.Labels[dockerdrv.LabelService], StartedAt: raw.State.StartedAt, Running: raw.State.Running, Networks: map[string]string{}}
	for name, n := range raw.NetworkSettings.Networks {
		st.Networks[name] = n.IPAddress
	}
	return st, nil
}

// SnapshotContainers inspects every container of the app, by ID.
func SnapshotContainers(tb testing.TB, app string) map[string]ContainerState {
	tb.Helper()
	m := map[string]ContainerState{}
	for _, id := range AppObjects(tb, KindContainer, app) {
		st, err := InspectContainer(id)
		if err != nil {
			tb.Fatal(err)
		}
		m[id] = st
	}
	return m
}

// ServiceIPs is the sorted addresses of a service's running containers on
// one Docker network.
func ServiceIPs(tb testing.TB, app, service, network string) []string {
	tb.Helper()
	out, err := Docker("ps", "-q", "--no-trunc",
		"--filter", "label="+dockerdrv.LabelApp+"="+app,
		"--filter", "label="+dockerdrv.LabelService+"="+service)
	if err != nil {
		tb.Fatal(err)
	}
	var ips []string
	for _, id := range Lines(out) {
		st, err := InspectContainer(id)
		if err != nil {
			tb.Fatal(err)
		}
		if ip := st.Networks[network]; ip != "" {
			ips = append(ips, ip)
		}
	}
	slices.Sort(ips)
	return ips
}
