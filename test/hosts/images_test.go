package hosts

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/supervise"
	"github.com/berth-dev/berth/internal/pki"
	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
	"github.com/berth-dev/berth/test/testkit"
)

// The images app: two services built here and one local-only image (the
// debian:bookworm-slim made offline, which no registry holds), three
// replicas each, on three agent hosts whose engines have none of them.
const imagesCompose = `
services:
  web:
    build: ./web
    command: ["sleep", "3600"]
    deploy:
      replicas: 3
  api:
    build: ./api
    command: ["sleep", "3600"]
    deploy:
      replicas: 3
  base:
    image: ` + baseImage + `
    command: ["sleep", "3600"]
    deploy:
      replicas: 3
`

func writeBuild(t *testing.T, dir, msg string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.WriteFile(t, dir, "Dockerfile", "FROM "+baseImage+"\nCOPY msg /msg\n")
	h.WriteFile(t, dir, "msg", msg+"\n")
}

// TestImagesOnHosts: build: and local-only images reach agent hosts that
// have their own engines, through the managers' registry; a rebuild rolls
// only its service; GC removes, on every manager, the blobs of an image no
// version needs and keeps the rest; the images outlive the manager that
// took the push; strangers are refused.
func TestImagesOnHosts(t *testing.T) {
	needHosts(t)
	c := newCLI(t, "bi")
	home := c.home
	name := "i" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	start := time.Now()
	c.must(t, "cluster", "create", name, "--managers", "3", "--agents", "3", "--registry-gc-grace", gcGrace.String())
	t.Logf("cluster create 3+3 (no image copy): %.1fs", time.Since(start).Seconds())
	t.Cleanup(func() { t.Logf("cleanup: %s", c.run(t, "cluster", "rm", name)) })

	ac := contextClient(t, home, name)
	ms := machines(t, c)
	var mgrAddrs []string
	for _, m := range ms {
		if m.Role == "manager" {
			mgrAddrs = append(mgrAddrs, net.JoinHostPort(m.Address, strconv.Itoa(machine.APIPort)))
		}
	}
	ac.SetAddrs(mgrAddrs)
	agents := agentNodes(t, ac)

	dir := t.TempDir()
	writeBuild(t, filepath.Join(dir, "web"), "web 1")
	writeBuild(t, filepath.Join(dir, "api"), "api 1")
	file := h.WriteFile(t, dir, "compose.yaml", imagesCompose)
	// A project of the run's own: up builds only what the engine lacks
	// (as Compose does), so a tag left by an earlier run would be reused.
	app := "imgs" + name
	t.Cleanup(func() {
		_ = exec.Command("docker", "image", "rm", "-f", app+"-web", app+"-api").Run()
	})
	start = time.Now()
	r := c.must(t, "up", "-p", app, "-f", file)
	t.Logf("cold up of 2 builds and 1 local image on 3 agents: %.1fs\n%s", time.Since(start).Seconds(), r.Stderr)
	if !strings.Contains(r.Stdout+r.Stderr, baseImage) {
		t.Errorf("up did not say it ships the local-only %s:\n%s", baseImage, r)
	}
	for _, svc := range []string{"web", "api", "base"} {
		h.WaitFor(t, 2*time.Minute, svc+" on the three agents", serviceSpread(ac, app, svc, agents, 3))
	}
	a, err := ac.GetApp(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]*types.Service{}
	for _, s := range a.Services {
		if s.ClusterImage == "" || s.ImageID == "" {
			t.Fatalf("service %s: ClusterImage %q, ImageID %q; want both (pushed to the cluster)", s.Name, s.ClusterImage, s.ImageID)
		}
		images[s.Name] = s
	}
	// Every replica runs the same bytes: each agent's engine has the
	// service's image ID.
	for host := range agents {
		for _, s := range images {
			sock := filepath.Join(home, "state", "berth", "hosts", name, host, "docker.sock")
			out, err := exec.Command("docker", "-H", "unix://"+sock, "image", "inspect", "--format", "{{.Id}}", s.ImageID).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != s.ImageID {
				t.Errorf("%s's engine: image %s of %s: %v %s", host, s.ImageID, s.Name, err, out)
			}
		}
	}
	ls := c.must(t, "image", "ls", "--json")
	var recs []api.Image
	if err := json.Unmarshal([]byte(ls.Stdout), &recs); err != nil || len(recs) != 3 {
		t.Fatalf("image ls --json: %v, want 3 images\n%s", err, ls.Stdout)
	}

	_, contexts, err := testkit.ReadContexts(home)
	if err != nil {
		t.Fatal(err)
	}
	run := imagesRun{c: c, ac: ac, dir: dir, file: file, app: app, agents: agents, home: home, cluster: name,
		adminToken: contexts[name].Token, ca: contexts[name].CAPEM}
	for _, m := range ms {
		if m.Role == "manager" {
			run.managers = append(run.managers, m)
		}
	}
	web2 := ""
	t.Run("a rebuild rolls only its service", func(t *testing.T) {
		before := runningTasks(t, ac, app)
		web2 = run.rebuildWeb(t, "web 2", images["web"].ClusterImage)
		after := runningTasks(t, ac, app)
		for id, svc := range before {
			if svc == "web" {
				if _, ok := after[id]; ok {
					t.Errorf("web's task %s survived the rebuild", id)
				}
			} else if after[id] != svc {
				t.Errorf("%s's task %s was replaced; only web changed", svc, id)
			}
		}
	})

	t.Run("GC removes the blobs of an image no version needs from every manager, and keeps the rest", func(t *testing.T) {
		if web2 == "" {
			t.Skip("web was not rebuilt")
		}
		run.checkImageGC(t, images["web"].ClusterImage, web2)
	})

	t.Run("strangers are refused", func(t *testing.T) {
		m := ms[slices.IndexFunc(ms, func(m hostRecord) bool { return m.Role == "manager" })]
		_, contexts, err := testkit.ReadContexts(home)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(contexts[name].CAPEM))
		// A push (the start of an upload) with the cluster's CA but no
		// credential.
		plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: pki.RoleManager.ServerName()}}}
		u := "https://" + net.JoinHostPort(m.Address, strconv.Itoa(machine.APIPort)) + "/v2/" + app + "/web/blobs/uploads/"
		resp, err := plain.Post(u, "application/octet-stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("push without the admin credential: %s, want 401", resp.Status)
		}
		// A pull with a certificate of another CA, on the cluster port.
		foreign := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, ServerName: pki.RoleManager.ServerName(), Certificates: []tls.Certificate{selfSigned(t)}}}}
		ref := images["api"].ClusterImage
		repo, digest, _ := strings.Cut(ref, "@")
		u = "https://" + net.JoinHostPort(m.Address, strconv.Itoa(machine.ClusterPort)) + "/v2/" + repo + "/manifests/" + digest
		resp, err = foreign.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("pull with a foreign certificate: %s, want it refused", resp.Status)
			}
		}
	})

	t.Run("kill -9 the manager that took the push; a new agent pulls everything", func(t *testing.T) {
		_, contexts, err := testkit.ReadContexts(home)
		if err != nil {
			t.Fatal(err)
		}
		took := ""
		for _, m := range ms {
			if strings.Contains(contexts[name].Addr, "//"+m.Address+":") {
				took = m.Name
			}
		}
		if took == "" {
			t.Fatalf("no manager at the context's address %s", contexts[name].Addr)
		}
		pidfile := filepath.Join(home, "state", "berth", "hosts", name, took, "berth.pid")
		sup, child := supervise.ReadPid(pidfile, ""), supervise.ReadPid(supervise.ChildPidfile(pidfile), "")
		for _, pid := range []int{sup, child} {
			if pid != 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		start := time.Now()
		c.must(t, "machine", "create", "a4")
		t.Logf("machine create a4 with %s dead: %.1fs", took, time.Since(start).Seconds())
		for _, a := range []string{"a1", "a2", "a3"} {
			c.must(t, "node", "drain", a)
		}
		a4 := map[string]string{}
		h.WaitFor(t, 30*time.Second, "node a4", func() error {
			ns, err := ac.ListNodes(context.Background())
			if err != nil {
				return err
			}
			for _, n := range ns {
				if n.Name == "a4" {
					a4["a4"] = n.ID
					return nil
				}
			}
			return fmt.Errorf("no node a4 among %d", len(ns))
		})
		for _, svc := range []string{"web", "api", "base"} {
			h.WaitFor(t, 2*time.Minute, svc+" all on a4", serviceSpread(ac, app, svc, a4, 1))
		}
		t.Logf("all three images pulled by a4 from the surviving managers %.1fs after it was made", time.Since(start).Seconds())
	})
}

type hostRecord struct{ Name, Role, State, Address string }

func machines(t *testing.T, c cli) []hostRecord {
	t.Helper()
	ls := c.must(t, "machine", "ls", "--json")
	var ms []hostRecord
	if err := json.Unmarshal([]byte(ls.Stdout), &ms); err != nil {
		t.Fatalf("machine ls --json: %v\n%s", err, ls.Stdout)
	}
	return ms
}

// serviceSpread is met when three of the service's tasks (of every
// service when svc is "") run, on `spread` distinct nodes, all among nodes.
func serviceSpread(c *api.Client, app, svc string, nodes map[string]string, spread int) func() error {
	return func() error {
		tasks, _, err := c.ListTasks(context.Background(), api.TaskQuery{App: app})
		if err != nil {
			return err
		}
		on := map[string]int{}
		running := 0
		for _, tk := range tasks {
			if (svc != "" && tk.Service != svc) || tk.State != types.TaskRunning {
				continue
			}
			if !slices.Contains(mapValues(nodes), tk.NodeID) {
				return fmt.Errorf("%s task %s runs on node %s, not one of %v", cmp.Or(svc, app), tk.ID, tk.NodeID, nodes)
			}
			running++
			on[tk.NodeID]++
		}
		if running != 3 || len(on) != spread {
			return fmt.Errorf("%s: %d tasks running on %d nodes (%v), want 3 on %d", cmp.Or(svc, app), running, len(on), on, spread)
		}
		return nil
	}
}

// runningTasks maps the app's running task IDs to their services.
func runningTasks(t *testing.T, c *api.Client, app string) map[string]string {
	t.Helper()
	tasks, _, err := c.ListTasks(context.Background(), api.TaskQuery{App: app})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tk := range tasks {
		if tk.State == types.TaskRunning {
			out[tk.ID] = tk.Service
		}
	}
	return out
}

// selfSigned is a client certificate no cluster CA signed.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stranger", OrganizationalUnit: []string{"worker"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
