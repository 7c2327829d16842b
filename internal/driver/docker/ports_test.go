package docker

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/types"
)

// TestPublishedPortTaken: a port another holder has gives one sentence
// naming the port and who holds it (not the engine's raw error with an
// endpoint hash), and the rejected task leaves no container behind.
func TestPublishedPortTaken(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	cases := []struct {
		name   string
		holder func(t *testing.T) (port int, who string)
	}{
		{"a host process", func(t *testing.T) (int, string) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			// The holder is this test process: named by /proc, as the
			// agent (root, the same network namespace) finds it.
			comm, _ := os.ReadFile("/proc/self/comm")
			return l.Addr().(*net.TCPAddr).Port, fmt.Sprintf("process %s (pid %d)", strings.TrimSpace(string(comm)), os.Getpid())
		}},
		{"another task's container", func(t *testing.T) (int, string) {
			withPort, url := published(t)
			first := e.task("first", 1, withPort)
			e.start(d, first)
			port, _ := strconv.Atoi(url[strings.LastIndex(url, ":")+1:])
			return port, "task " + first.Task.Name()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port, who := tc.holder(t)
			cfg := e.task("web", 1, func(s *types.Service) {
				s.Ports = []types.Port{{Target: 8080, Published: uint16(port), Protocol: "tcp", HostIP: "127.0.0.1"}}
			})
			_, err := d.Start(e.ctx, cfg)
			if err == nil {
				t.Fatal("started a task on a taken port")
			}
			t.Log(err)
			msg := err.Error()
			want := "port 127.0.0.1:" + strconv.Itoa(port) + "/tcp is taken by " + who
			if !strings.Contains(msg, want) || strings.Contains(msg, "endpoint") || strings.Contains(msg, "\n") {
				t.Errorf("error %q\nwant one sentence with %q and no endpoint", msg, want)
			}
			list, err := e.engine(t).ContainerList(e.ctx, client.ContainerListOptions{All: true,
				Filters: make(client.Filters).Add("label", LabelTask+"="+cfg.Task.ID)})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Items) != 0 {
				t.Errorf("the rejected task left %d containers (%s)", len(list.Items), list.Items[0].State)
			}
		})
	}
}

// engine is a client of the engine the drivers use, for looking behind them.
func (e *env) engine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestDiscardedContainerIsNoNews: the container a failed start removed
// sends no event: the failed Start already said what became of the task,
// and a "container removed" exit would turn the rejected task complete.
func TestDiscardedContainerIsNoNews(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	events, err := d.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rejected := e.task("web", 1, func(s *types.Service) {
		s.Ports = []types.Port{{Target: 8080, Published: uint16(l.Addr().(*net.TCPAddr).Port), Protocol: "tcp", HostIP: "127.0.0.1"}}
	})
	if _, err := d.Start(e.ctx, rejected); err == nil {
		t.Fatal("started on a taken port")
	}
	// Events come in order: once the next task's exit is seen (killed
	// outside the driver: its own start is no news), any event of the
	// discarded container would have come before it.
	next := e.task("next", 1, nil)
	st := e.start(d, next)
	if _, err := d.cli.ContainerKill(e.ctx, st.ContainerID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	for st := range events {
		if st.TaskID == rejected.Task.ID {
			t.Fatalf("event for the discarded container: %+v", st)
		}
		if st.TaskID == next.Task.ID {
			return
		}
	}
	t.Fatal("event stream closed before the next task's exit")
}
