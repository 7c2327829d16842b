package docker

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

func TestStartPublishesPortAndAdopts(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	pub, url := published(t)
	cfg := e.task("web", 1, pub)
	st := e.start(d, cfg)
	if st.State != driver.StateRunning || st.ContainerID == "" || st.TaskID != cfg.Task.ID {
		t.Fatalf("status after start: %s", describe(st))
	}
	if _, body := get(t, url+"/"); !strings.Contains(body, "hello from web") {
		t.Fatalf("GET / = %q", body)
	}
	again := e.start(d, cfg)
	if again.ContainerID != st.ContainerID {
		t.Fatalf("second Start made container %s, want adoption of %s", again.ContainerID, st.ContainerID)
	}
	list, err := d.List(e.ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d tasks, %v; want 1", len(list), err)
	}
}

func TestServiceNamesResolveOnlyOnSharedNetworks(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	onFront := func(s *types.Service) { s.Networks = []types.NetworkAttachment{{Name: "front"}} }
	e.start(d, e.task("web", 1, onFront))
	e.start(d, e.task("web", 2, onFront))
	probePub, probe := published(t)
	e.start(d, e.task("probe", 1, func(s *types.Service) { onFront(s); probePub(s) }))
	otherPub, other := published(t)
	e.start(d, e.task("other", 1, func(s *types.Service) {
		s.Networks = []types.NetworkAttachment{{Name: "back"}}
		otherPub(s)
	}))

	ips, code := lookup(t, probe, "web")
	if code != http.StatusOK || len(ips) != 2 {
		t.Fatalf("web from a front service resolved to %v (HTTP %d), want 2 replicas", ips, code)
	}
	if code, body := get(t, probe+"/get?url=http://web:8080/"); code != http.StatusOK || !strings.Contains(body, "hello from web") {
		t.Fatalf("front service could not reach web: %d %s", code, body)
	}
	if ips, code := lookup(t, other, "web"); code == http.StatusOK {
		t.Fatalf("web resolved to %v from a service on another network", ips)
	}
	if code, body := get(t, other+"/get?url=http://"+ips[0]+":8080/"); code == http.StatusOK {
		t.Fatalf("service on another network reached web at %s: %s", ips[0], body)
	}
}

func TestSecretsAndConfigsMountedAsFiles(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	pub, url := published(t)
	cfg := e.task("web", 1, func(s *types.Service) {
		pub(s)
		s.Secrets = []types.FileRef{{Source: "token", Target: "/run/secrets/token", Mode: 0o400}}
		s.Configs = []types.FileRef{{Source: "conf", Target: "/etc/app.conf"}}
	})
	cfg.Secrets = map[string]*types.Secret{"token": {Name: "token", Data: []byte("s3cret")}}
	cfg.Configs = map[string]*types.Secret{"conf": {Name: "conf", Data: []byte("debug=1")}}
	e.start(d, cfg)

	if _, body := get(t, url+"/file?path=/run/secrets/token"); body != "s3cret" {
		t.Fatalf("secret in container = %q", body)
	}
	if _, body := get(t, url+"/file?path=/etc/app.conf"); body != "debug=1" {
		t.Fatalf("config in container = %q", body)
	}
	host, err := filepath.Glob(filepath.Join(d.files.secretsRoot, cfg.Task.ID, "*"))
	if err != nil || len(host) != 1 {
		t.Fatalf("secret files on host: %v %v", host, err)
	}
	fi, err := os.Stat(host[0])
	if err != nil || fi.Mode().Perm() != 0o400 {
		t.Fatalf("secret file mode = %v, %v; want 0400", fi.Mode(), err)
	}
	if !isTmpfs(d.files.secretsRoot) {
		t.Fatalf("secrets root %s is not a tmpfs", d.files.secretsRoot)
	}
	if err := d.Remove(e.ctx, cfg.Task.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(host[0]); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("secret file survived Remove: %v", err)
	}
}

// TestSecretFilesGoWhenTheTaskStops: a stopped task (scale to 0, a
// replacement) keeps its container for its logs, but not its secrets on
// the node; they stayed until the task left the history.
func TestSecretFilesGoWhenTheTaskStops(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	cfg := e.task("web", 1, func(s *types.Service) {
		s.Secrets = []types.FileRef{{Source: "token", Target: "/run/secrets/token", Mode: 0o400}}
	})
	cfg.Secrets = map[string]*types.Secret{"token": {Name: "token", Data: []byte("s3cret")}}
	e.start(d, cfg)
	dir := filepath.Join(d.files.secretsRoot, cfg.Task.ID)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("secret files of a running task: %v", err)
	}
	if err := d.Stop(e.ctx, cfg.Task.ID, 5*time.Second, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("secret files survived the stop: %v", err)
	}
	if _, err := d.Inspect(e.ctx, cfg.Task.ID); err != nil {
		t.Fatalf("the stopped task's container is gone too (its logs with it): %v", err)
	}
}

func TestStopUsesSignalAndGrace(t *testing.T) {
	tests := []struct {
		name     string
		signal   string
		wantExit int
	}{
		{"graceful SIGTERM", "SIGTERM", 0},            // the app shuts down and exits 0
		{"container stop signal", "", 0},              // SIGTERM, through ContainerStop
		{"other signal", "SIGHUP", 2},                 // Go exits; as PID 1 it cannot die of it, so 2
		{"ignored signal, then kill", "SIGUSR1", 137}, // Go ignores it: killed after grace
	}
	e := newEnv(t)
	d := e.driver("n1")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			publish, url := published(t)
			cfg := e.task("web", i+1, publish)
			e.start(d, cfg)
			// The app answers once its signal handlers are set: a signal
			// sent before that meets Go's defaults (or, PID 1, nothing).
			get(t, url)
			if err := d.Stop(e.ctx, cfg.Task.ID, time.Second, tt.signal); err != nil {
				t.Fatal(err)
			}
			st, err := d.Inspect(e.ctx, cfg.Task.ID)
			if err != nil || st.State != driver.StateExited || st.ExitCode != tt.wantExit {
				t.Fatalf("after stop: %s, %v; want exited with %d", describe(st), err, tt.wantExit)
			}
			if err := d.Stop(e.ctx, cfg.Task.ID, time.Second, tt.signal); err != nil {
				t.Fatalf("second stop: %v", err)
			}
		})
	}
	if err := d.Stop(e.ctx, "no-such-task", time.Second, ""); err != nil {
		t.Fatalf("stop of a missing task: %v", err)
	}
	if err := d.Remove(e.ctx, "no-such-task"); err != nil {
		t.Fatalf("remove of a missing task: %v", err)
	}
}

func TestExitCodeDeliveredAsEvent(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	events, err := d.Events(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.task("job", 1, func(s *types.Service) {
		s.Env = map[string]string{"MODE": "oneshot", "EXIT_CODE": "3"}
	})
	e.start(d, cfg)
	deadline := time.After(time.Minute)
	for {
		select {
		case st := <-events:
			if st.TaskID == cfg.Task.ID && st.State == driver.StateExited {
				if st.ExitCode != 3 || st.FinishedAt.IsZero() {
					t.Fatalf("exit event: %s; want exit code 3 and a finish time", describe(st))
				}
				var buf strings.Builder
				if err := d.Logs(e.ctx, cfg.Task.ID, driver.LogOptions{Follow: true, Tail: 1}, &buf); err != nil || buf.String() != "oneshot: done\n" {
					t.Fatalf("logs = %q, %v; want the one line", buf.String(), err)
				}
				return
			}
		case <-deadline:
			t.Fatal("no exit event for the task")
		}
	}
}

func TestHealthReachesHealthy(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	events, err := d.Events(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.task("web", 1, func(s *types.Service) {
		s.Healthcheck = &types.Healthcheck{
			Test:     []string{"CMD", "/app", "healthcheck"},
			Interval: 300 * time.Millisecond, Timeout: 3 * time.Second, Retries: 3,
		}
	})
	st := e.start(d, cfg)
	if st.Health != types.HealthStarting && st.Health != types.HealthHealthy {
		t.Fatalf("health right after start = %q", st.Health)
	}
	deadline := time.After(time.Minute)
	for {
		select {
		case st := <-events:
			if st.TaskID == cfg.Task.ID && st.Health == types.HealthHealthy {
				return
			}
		case <-deadline:
			t.Fatal("no healthy event for the task")
		}
	}
}

// An unhealthy task carries its failing probe's output, which only
// `docker inspect` showed before.
func TestUnhealthyReportsProbeOutput(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	events, err := d.Events(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.task("db", 1, func(s *types.Service) {
		s.Env["UNHEALTHY_FILE"] = "/app" // exists: /health fails from the start
		s.Healthcheck = &types.Healthcheck{
			Test:     []string{"CMD", "/app", "healthcheck"},
			Interval: 300 * time.Millisecond, Timeout: 3 * time.Second, Retries: 2,
		}
	})
	e.start(d, cfg)
	deadline := time.After(time.Minute)
	for {
		select {
		case st := <-events:
			if st.TaskID != cfg.Task.ID || st.Health != types.HealthUnhealthy {
				continue
			}
			if !strings.Contains(st.HealthOutput, "health: 500") {
				t.Fatalf("unhealthy with output %q, want the probe's \"health: 500 ...\"", st.HealthOutput)
			}
			got, err := d.Inspect(e.ctx, cfg.Task.ID)
			if err != nil || got.HealthOutput != st.HealthOutput && !strings.Contains(got.HealthOutput, "health: 500") {
				t.Fatalf("inspect: %+v, %v", got, err)
			}
			return
		case <-deadline:
			t.Fatal("no unhealthy event for the task")
		}
	}
}

func TestListSeesOnlyItsNode(t *testing.T) {
	e := newEnv(t)
	d1, d2 := e.driver("n1"), e.driver("n2")
	a := e.task("web", 1, nil)
	b := e.task("web", 2, nil)
	e.start(d1, a)
	e.start(d2, b)
	for _, tc := range []struct {
		d    *Driver
		want string
	}{{d1, a.Task.ID}, {d2, b.Task.ID}} {
		list, err := tc.d.List(e.ctx)
		if err != nil || len(list) != 1 || list[0].TaskID != tc.want {
			t.Fatalf("node %s lists %d tasks (%v), want only %s", tc.d.nodeID, len(list), err, tc.want)
		}
	}
	if _, err := d1.Inspect(e.ctx, b.Task.ID); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("n1 inspecting n2's task: %v, want ErrNotFound", err)
	}
}

func TestMissingImage(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	cfg := e.task("web", 1, func(s *types.Service) { s.Image = "berth-test/missing:nope" })
	_, err := d.Start(e.ctx, cfg)
	if !errors.Is(err, driver.ErrImageNotFound) {
		t.Fatalf("err = %v, want ErrImageNotFound", err)
	}
	// The image, and no node ID: the user reads it beside the node's name.
	if !strings.Contains(err.Error(), "berth-test/missing:nope") || strings.Contains(err.Error(), d.nodeID) {
		t.Fatalf("error %q does not name the image, or names the node by ID", err)
	}
	t.Log(err)
}

// Eight replicas start at once, half through each of two drivers sharing
// the engine (two agents on one host): one network must come out of it.
func TestConcurrentStartsShareOneNetwork(t *testing.T) {
	e := newEnv(t)
	drivers := []*Driver{e.driver("n1"), e.driver("n2")}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for slot := 1; slot <= 8; slot++ {
		cfg := e.task("web", slot, nil)
		d := drivers[slot%2]
		wg.Go(func() {
			if _, err := d.Start(e.ctx, cfg); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	nets, err := drivers[0].ensurer.networksNamed(e.ctx, e.app+"_default")
	if err != nil || len(nets) != 1 {
		t.Fatalf("networks named %s_default: %d, %v; want 1", e.app, len(nets), err)
	}
	for _, d := range drivers {
		list, err := d.List(e.ctx)
		if err != nil || len(list) != 4 {
			t.Fatalf("node %s runs %d tasks, %v; want 4", d.nodeID, len(list), err)
		}
		for _, st := range list {
			if st.State != driver.StateRunning {
				t.Errorf("task %s: %s", st.TaskID, describe(st))
			}
		}
	}
}

func TestRemoveAppKeepsVolumesUnlessAsked(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	cfg := e.task("db", 1, func(s *types.Service) {
		s.Mounts = []types.Mount{{Type: types.MountVolume, Source: "data", Target: "/data"}}
	})
	e.start(d, cfg)
	if err := d.Remove(e.ctx, cfg.Task.ID); err != nil {
		t.Fatal(err)
	}
	vol := e.app + "_data"
	if err := d.RemoveApp(e.ctx, e.app, false); err != nil {
		t.Fatal(err)
	}
	if nets, _ := d.ensurer.networksNamed(e.ctx, e.app+"_default"); len(nets) != 0 {
		t.Fatalf("network survived RemoveApp: %v", nets)
	}
	if _, err := d.cli.VolumeInspect(e.ctx, vol, client.VolumeInspectOptions{}); err != nil {
		t.Fatalf("volume %s removed without volumes=true: %v", vol, err)
	}
	if err := d.RemoveApp(e.ctx, e.app, true); err != nil {
		t.Fatal(err)
	}
	if _, err := d.cli.VolumeInspect(e.ctx, vol, client.VolumeInspectOptions{}); err == nil {
		t.Fatalf("volume %s survived RemoveApp with volumes", vol)
	}
}

func TestStartPrefersImageID(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	img, err := d.cli.ImageInspect(e.ctx, e.image)
	if err != nil {
		t.Fatal(err)
	}
	// The tag no longer exists (say, rebuilt elsewhere); the ID the CLI
	// resolved at build time still runs the image that was built.
	cfg := e.task("web", 1, func(s *types.Service) { s.Image, s.ImageID = "berth-test/retagged:gone", img.ID })
	if st := e.start(d, cfg); st.State != driver.StateRunning {
		t.Fatalf("status %s", describe(st))
	}
}
