package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

func TestLsFormats(t *testing.T) {
	f, url := newFakeManager(t)
	now := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	f.apps["shop"] = &types.App{Name: "shop", Version: 2, UpdatedAt: now.Add(-time.Hour), Services: []*types.Service{{Name: "web"}, {Name: "db"}}}
	f.apps["batch"] = &types.App{Name: "batch", Version: 1, UpdatedAt: now.Add(-2 * time.Hour), Services: []*types.Service{{Name: "job"}}}
	f.apps["new"] = &types.App{Name: "new", Version: 1, UpdatedAt: now}
	f.tasks = []*types.Task{
		{ID: "s1", App: "shop", Service: "web", Slot: 1, State: types.TaskRunning, DesiredState: types.DesiredRunning},
		{ID: "s2", App: "shop", Service: "web", Slot: 2, State: types.TaskRunning, DesiredState: types.DesiredRunning},
		{ID: "s3", App: "shop", Service: "db", Slot: 1, State: types.TaskFailed, DesiredState: types.DesiredRunning, ExitCode: intp(1)},
		{ID: "b1", App: "batch", Service: "job", Slot: 1, State: types.TaskComplete, DesiredState: types.DesiredRunning, ExitCode: intp(0)},
	}
	tests := []struct {
		name, out, err string
		args           []string
	}{
		{name: "table hides what all exited", out: "NAME   VERSION   SERVICES   STATUS                  UPDATED\nnew    1         -          -                       0s ago\nshop   2         web,db     running(2), exited(1)   1h ago\n"},
		{name: "all", args: []string{"-a", "-q"}, out: "batch\nnew\nshop\n"},
		{name: "quiet", args: []string{"-q"}, out: "new\nshop\n"},
		{name: "json lines", args: []string{"--format", "json", "-a"}, out: `{"Name":"batch","Status":"exited(1)","Version":1,"Services":["job"],"UpdatedAt":"2026-11-25T00:00:00Z"}
{"Name":"new","Status":"","Version":1,"Services":[],"UpdatedAt":"2026-11-25T02:00:00Z"}
{"Name":"shop","Status":"running(2), exited(1)","Version":2,"Services":["web","db"],"UpdatedAt":"2026-11-25T01:00:00Z"}
`},
		{name: "o yaml", args: []string{"-o", "yaml"}, out: `- Name: new
  Status: ""
  Version: 1
  Services: []
  UpdatedAt: "2026-11-25T02:00:00Z"
- Name: shop
  Status: running(2), exited(1)
  Version: 2
  Services:
    - web
    - db
  UpdatedAt: "2026-11-25T01:00:00Z"
`},
		{name: "template refused", args: []string{"--format", "{{.Name}}"}, err: `--format takes table or json, not "{{.Name}}"`},
		{name: "filter by name", args: []string{"-a", "-q", "--filter", "name=sho"}, out: "shop\n"},
		{name: "filter by names", args: []string{"-a", "-q", "--filter", "name=^new$", "--filter", "name=batch"}, out: "batch\nnew\n"},
		{name: "filter as a regular expression", args: []string{"-a", "-q", "--filter", "name=^(b|s)"}, out: "batch\nshop\n"},
		{name: "filter and -a", args: []string{"-q", "--filter", "name=batch"}, out: ""},
		{name: "filter matching none", args: []string{"-q", "--filter", "name=nope"}, out: ""},
		{name: "unknown filter", args: []string{"--filter", "status=running"}, err: `--filter takes name=X, as docker compose ls, not "status=running"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code := h.run(t, append([]string{"ls", "--addr", url}, tt.args...)...)
			if tt.err != "" {
				if code != 1 || !strings.Contains(h.errOut.String(), tt.err) {
					t.Fatalf("exit %d, stderr %q; want %q", code, h.errOut, tt.err)
				}
				return
			}
			if code != 0 || h.out.String() != tt.out {
				t.Errorf("exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s", code, h.out, tt.out, h.errOut)
			}
		})
	}
}

func TestServiceLs(t *testing.T) {
	url := psFixture(t)
	tests := []struct {
		name string
		args []string
		out  string
	}{
		{"table", nil, "NAME        MODE         REPLICAS   IMAGE         PORTS                              VERSION   VERDICT\nhello_db    replicated   0/1        postgres:17   -                                  1         -\nhello_web   replicated   1/2        nginx:1.27    127.0.0.1:8080->80/tcp, 9000/tcp   2         up\n"},
		{"quiet", []string{"-q"}, "hello_db\nhello_web\n"},
		{"json", []string{"-o", "json"}, `[
  {
    "Name": "hello_db",
    "App": "hello",
    "Service": "db",
    "Mode": "replicated",
    "Running": 0,
    "Desired": 1,
    "Replicas": "0/1",
    "Image": "postgres:17",
    "Ports": "",
    "Version": 1,
    "Verdict": ""
  },
  {
    "Name": "hello_web",
    "App": "hello",
    "Service": "web",
    "Mode": "replicated",
    "Running": 1,
    "Desired": 2,
    "Replicas": "1/2",
    "Image": "nginx:1.27",
    "Ports": "127.0.0.1:8080->80/tcp, 9000/tcp",
    "Version": 2,
    "Verdict": "up"
  }
]
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if code := h.run(t, append([]string{"service", "ls", "--addr", url}, tt.args...)...); code != 0 || h.out.String() != tt.out {
				t.Errorf("exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s", code, h.out, tt.out, h.errOut)
			}
		})
	}
}

func TestInspectTask(t *testing.T) {
	url := psFixture(t)
	tests := []struct {
		name, ref string
		args      []string
		want      []string // lines of the text output, or JSON fields
		err       string
	}{
		{name: "by name", ref: "hello-db-1", want: []string{
			"Task hello-db-1 (t3) of service db, version 1",
			"  node:        laptop",
			"  state:       failed (exit 1): exited with code 1 (Exited (1) 2 minutes ago)",
			"  restarts:    2",
		}},
		{name: "by id prefix", ref: "t1", want: []string{"Task hello-web-1 (t1) of service web, version 2", "  ports:       127.0.0.1:8080->80/tcp, 9000/tcp"}},
		{name: "unknown", ref: "hello-web-9", err: "app hello has no service hello-web-9, nor a task of that name or ID; see berth ps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			code := h.run(t, append([]string{"inspect", tt.ref, "-p", "hello", "--addr", url}, tt.args...)...)
			if tt.err != "" {
				if code != 1 || !strings.Contains(h.errOut.String(), tt.err) {
					t.Fatalf("exit %d, stderr %q; want %q", code, h.errOut, tt.err)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(h.out.String(), w+"\n") {
					t.Errorf("stdout lacks %q:\n%s", w, h.out)
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		h := newHarness(t)
		if code := h.run(t, "inspect", "hello-db-1", "-p", "hello", "-o", "json", "--addr", url); code != 0 {
			t.Fatalf("exit %d: %s", code, h.errOut)
		}
		var got api.TaskInspection
		if err := json.Unmarshal([]byte(h.out.String()), &got); err != nil {
			t.Fatal(err)
		}
		var spec map[string]any
		_ = json.Unmarshal(got.ServiceSpec, &spec)
		if got.Name != "hello-db-1" || got.State != "exited" || got.ExitCode != 1 || spec["image"] != "postgres:17" {
			t.Errorf("inspection = %+v, spec %v", got, spec)
		}
	})
}

// TestConfigFormats loads a real Compose file with compose-go, as berth
// config does, and prints each of its forms.
func TestConfigFormats(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(`name: cfg
services:
  web:
    image: nginx:1.27
    ports: ["127.0.0.1:8080:80"]
    volumes: [data:/data]
    healthcheck:
      test: ["CMD", "true"]
      interval: 1m30s
    stop_grace_period: 20s
  api:
    image: ${API_IMAGE:-shop/api:2}
    restart: always
volumes:
  data: {}
  logs: {}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
		err   string
	}{
		{name: "services", args: []string{"--services"}, check: exact("api\nweb\n")},
		{name: "volumes", args: []string{"--volumes"}, check: exact("data\nlogs\n")},
		{name: "images", args: []string{"--images"}, check: exact("shop/api:2\nnginx:1.27\n")},
		{name: "compose yaml", check: contains("name: cfg\n", "interval: 1m30s\n", "published: \"8080\"\n", "host_ip: 127.0.0.1\n")},
		{name: "compose json", args: []string{"--format", "json"}, check: func(t *testing.T, out string) {
			var m struct {
				Name     string
				Services map[string]struct {
					Image       string
					Healthcheck struct{ Interval string }
				}
			}
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if m.Name != "cfg" || m.Services["api"].Image != "shop/api:2" || m.Services["web"].Healthcheck.Interval != "1m30s" {
				t.Errorf("model = %+v", m)
			}
		}},
		{name: "o json is format json", args: []string{"-o", "json"}, check: contains(`"name": "cfg"`)},
		{name: "berth yaml", args: []string{"--berth"}, check: contains("name: cfg\n", "interval: 1m30s\n", "stop_grace_period: 20s\n")},
		{name: "berth json", args: []string{"--berth", "--format", "json"}, check: func(t *testing.T, out string) {
			var m struct {
				Name     string
				Services []struct {
					Name            string `json:"name"`
					StopGracePeriod string `json:"stop_grace_period"`
					Healthcheck     struct {
						Interval string `json:"interval"`
					} `json:"healthcheck"`
				}
			}
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var web = m.Services[len(m.Services)-1]
			for _, s := range m.Services {
				if s.Name == "web" {
					web = s
				}
			}
			if web.StopGracePeriod != "20s" || web.Healthcheck.Interval != "1m30s" {
				t.Errorf("durations as nanoseconds? %+v\n%s", web, out)
			}
		}},
		{name: "bad format", args: []string{"--format", "toml"}, err: `--format takes yaml or json, not "toml"`},
		{name: "format and o disagree", args: []string{"--format", "yaml", "-o", "json"}, err: "--format yaml and -o json ask for two formats; give one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.e.project = composeLoader{}
			code := h.run(t, append([]string{"config", "-f", file}, tt.args...)...)
			if !exitAsWanted(t, h, code, tt.err) {
				return
			}
			tt.check(t, h.out.String())
		})
	}
}

func exact(want string) func(*testing.T, string) {
	return func(t *testing.T, out string) {
		if out != want {
			t.Errorf("stdout = %q, want %q", out, want)
		}
	}
}

func contains(want ...string) func(*testing.T, string) {
	return func(t *testing.T, out string) {
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("stdout lacks %q:\n%s", w, out)
			}
		}
	}
}

// TestDeploymentDurationsAsWritten: deployments -o json and inspect -o json
// write an update's delay as Compose does ("1s"), not in nanoseconds.
func TestDeploymentDurationsAsWritten(t *testing.T) {
	f, url := newFakeManager(t)
	seedApp(t, f, url)
	for _, args := range [][]string{{"deployments", "-o", "json"}, {"inspect", "web", "-o", "yaml"}} {
		h := newHarness(t)
		if code := h.run(t, append(args, "--addr", url)...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, h.errOut)
		}
		out := h.out.String()
		if !strings.Contains(out, `"delay": "1s"`) && !strings.Contains(out, "delay: 1s\n") || strings.Contains(out, "1000000000") {
			t.Errorf("%v: want delay 1s:\n%s", args, out)
		}
	}
}
