package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/testimage"
	"github.com/berth-dev/berth/internal/types"
	"github.com/berth-dev/berth/test/testkit"
)

// env is one test's view of the engine: drivers, the test image, an app name
// no other test uses, and cleanup of everything carrying that app's label.
type env struct {
	t     *testing.T
	ctx   context.Context
	image string
	app   string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Skipf("no docker engine: %v", err)
	}
	image, err := testimage.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, image: image, app: "bt" + randID()[:8]}
	t.Cleanup(func() { cleanupApp(cli, e.app) })
	return e
}

// cleanupApp removes every container, network and volume of the app.
func cleanupApp(cli *client.Client, app string) {
	ctx := context.Background()
	f := make(client.Filters).Add("label", LabelApp+"="+app)
	cs, _ := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	for _, c := range cs.Items {
		_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	ns, _ := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	for _, n := range ns.Items {
		_, _ = cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
	}
	vs, _ := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	for _, v := range vs.Items {
		_, _ = cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
	}
}

// driver makes a driver for a node of its own; the secrets tmpfs it may
// mount is unmounted at cleanup.
func (e *env) driver(node string) *Driver {
	e.t.Helper()
	return e.driverAt(node, "")
}

// driverAt is driver with the engine at host ("": the default engine).
func (e *env) driverAt(node, host string) *Driver {
	e.t.Helper()
	node = e.app + "-" + node
	d, err := New(e.ctx, Config{NodeID: node, DataDir: e.t.TempDir(), Host: host})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = syscall.Unmount(d.files.secretsRoot, syscall.MNT_DETACH)
		_ = os.RemoveAll("/run/berth/" + node)
		d.Close()
	})
	return d
}

// task is a TaskConfig for one replica of a service running the test app.
func (e *env) task(service string, slot int, mutate func(*types.Service)) *driver.TaskConfig {
	s := &types.Service{
		Name:     service,
		Image:    e.image,
		Env:      map[string]string{"MESSAGE": "hello from " + service},
		Networks: []types.NetworkAttachment{{Name: "default"}},
	}
	if mutate != nil {
		mutate(s)
	}
	return &driver.TaskConfig{
		Task:     &types.Task{ID: randID(), App: e.app, Service: service, Slot: slot, ServiceVersion: 1},
		Service:  s,
		Networks: map[string]*types.Network{"default": {Name: "default"}, "front": {Name: "front"}, "back": {Name: "back"}},
		Volumes:  map[string]*types.Volume{"data": {Name: "data"}},
	}
}

func (e *env) start(d *Driver, cfg *driver.TaskConfig) *driver.Status {
	e.t.Helper()
	st, err := d.Start(e.ctx, cfg)
	if err != nil {
		e.t.Fatalf("start %s: %v", cfg.Task.Name(), err)
	}
	return st
}

// published maps the app's port 8080 to a free port on 127.0.0.1.
func published(t *testing.T) (func(*types.Service), string) {
	p := freePort(t)
	n, _ := strconv.Atoi(p)
	return func(s *types.Service) {
		s.Ports = []types.Port{{Target: 8080, Published: uint16(n), Protocol: "tcp", HostIP: "127.0.0.1"}}
	}, "http://127.0.0.1:" + p
}

func freePort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(testkit.FreePort(t))
}

// get retries until the app answers (it needs a moment after start) and
// returns the status code and body of the first answer.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	c := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lookup(t *testing.T, base, host string) ([]string, int) {
	t.Helper()
	code, body := get(t, base+"/lookup?host="+host)
	var ips []string
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &ips); err != nil {
			t.Fatalf("lookup %s: %v: %s", host, err, body)
		}
	}
	return ips, code
}

func randID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func describe(st *driver.Status) string {
	if st == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%+v", *st)
}
