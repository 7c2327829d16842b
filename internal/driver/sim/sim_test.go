package sim

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// cfgOf is the TaskConfig of task id of a service with the given labels,
// reservations and published ports.
func cfgOf(id string, labels map[string]string, reserve types.ResourceAmounts, ports ...uint16) *driver.TaskConfig {
	svc := &types.Service{Name: "web", DeployLabels: labels, Resources: types.Resources{Reservations: reserve}}
	for _, p := range ports {
		svc.Ports = append(svc.Ports, types.Port{Target: 80, Published: p, Protocol: "tcp", Mode: types.PortHost})
	}
	return &driver.TaskConfig{Task: &types.Task{ID: id, App: "app", Service: "web"}, Service: svc, NodeID: "n1"}
}

func newDriver(t *testing.T, cfg Config) *Driver {
	t.Helper()
	cfg.Node = "n1"
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestBehaviourOf(t *testing.T) {
	def := Behaviour{StartDelay: time.Second}
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		want    Behaviour
		wantErr string
	}{
		{name: "default", want: def},
		{name: "all", labels: map[string]string{LabelStartDelay: "200ms", LabelExitAfter: "5s", LabelExitCode: "1", LabelFail: "boom"},
			want: Behaviour{StartDelay: 200 * time.Millisecond, ExitAfter: 5 * time.Second, ExitCode: 1, Fail: "boom"}},
		{name: "bad delay", labels: map[string]string{LabelStartDelay: "soon"}, wantErr: LabelStartDelay},
		{name: "negative exit", labels: map[string]string{LabelExitAfter: "-1s"}, wantErr: LabelExitAfter},
		{name: "too long", labels: map[string]string{LabelExitAfter: "100h"}, wantErr: LabelExitAfter},
		{name: "bad code", labels: map[string]string{LabelExitCode: "256"}, wantErr: LabelExitCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BehaviourOf(&types.Service{Name: "web", DeployLabels: tc.labels}, def)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNewRefusesBadDefault(t *testing.T) {
	if _, err := New(Config{Node: "n1", Default: Behaviour{ExitCode: 300}}); err == nil {
		t.Fatal("exit code 300 accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("a driver without a node name accepted")
	}
}

func TestStartRunsAfterDelayAndAdopts(t *testing.T) {
	d := newDriver(t, Config{Default: Behaviour{StartDelay: 50 * time.Millisecond}})
	ctx := context.Background()
	began := time.Now()
	st, err := d.Start(ctx, cfgOf("t1", nil, types.ResourceAmounts{}))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != driver.StateRunning || st.TaskID != "t1" || st.StartedAt.IsZero() {
		t.Fatalf("status %+v, want t1 running", st)
	}
	if took := time.Since(began); took < 50*time.Millisecond {
		t.Fatalf("start took %s, want at least the 50ms delay", took)
	}
	// A second start of the same task adopts it: no second copy.
	again, err := d.Start(ctx, cfgOf("t1", nil, types.ResourceAmounts{}))
	if err != nil || again.StartedAt != st.StartedAt {
		t.Fatalf("second start: %+v, %v; want the same task adopted", again, err)
	}
	list, _ := d.List(ctx)
	if len(list) != 1 {
		t.Fatalf("list holds %d tasks, want 1", len(list))
	}
}

func TestExitAfterReportsCodeAndEvent(t *testing.T) {
	d := newDriver(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := d.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{LabelExitAfter: "20ms", LabelExitCode: "3"}
	if _, err := d.Start(ctx, cfgOf("t1", labels, types.ResourceAmounts{MemoryBytes: 10})); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-events:
		if st.TaskID != "t1" || st.State != driver.StateExited || st.ExitCode != 3 {
			t.Fatalf("event %+v, want t1 exited with 3", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit event within 10s")
	}
	if u := d.Used(); u.MemoryBytes != 0 {
		t.Fatalf("an exited task still holds %d bytes", u.MemoryBytes)
	}
	st, err := d.Inspect(ctx, "t1")
	if err != nil || st.State != driver.StateExited {
		t.Fatalf("inspect %+v, %v; want exited", st, err)
	}
	cancel()
	for range events { // closed once ctx is done
	}
}

func TestStartRefusals(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, Config{Capacity: types.ResourceAmounts{NanoCPUs: 2e9, MemoryBytes: 100}})
	if _, err := d.Start(ctx, cfgOf("held", nil, types.ResourceAmounts{NanoCPUs: 1e9, MemoryBytes: 60}, 8080)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     *driver.TaskConfig
		wantErr string
	}{
		{"memory", cfgOf("t2", nil, types.ResourceAmounts{MemoryBytes: 41}), "out of memory"},
		{"cpu", cfgOf("t3", nil, types.ResourceAmounts{NanoCPUs: 1e9 + 1}), "out of CPU"},
		{"port", cfgOf("t4", nil, types.ResourceAmounts{}, 8080), "8080/tcp is already allocated"},
		{"fail label", cfgOf("t5", map[string]string{LabelFail: "no disk"}, types.ResourceAmounts{}), "no disk"},
		{"bad label", cfgOf("t6", map[string]string{LabelExitCode: "x"}, types.ResourceAmounts{}), LabelExitCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Start(ctx, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if _, err := d.Inspect(ctx, tc.cfg.Task.ID); !errors.Is(err, driver.ErrNotFound) {
				t.Fatalf("a refused task is held: %v", err)
			}
		})
	}
	// What fits exactly is admitted; once the holder stops, its port and
	// reservations are free again.
	if _, err := d.Start(ctx, cfgOf("fits", nil, types.ResourceAmounts{NanoCPUs: 1e9, MemoryBytes: 40})); err != nil {
		t.Fatalf("a task that fits exactly: %v", err)
	}
	if err := d.Stop(ctx, "held", time.Second, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, cfgOf("t7", nil, types.ResourceAmounts{MemoryBytes: 60}, 8080)); err != nil {
		t.Fatalf("port and memory not released by stop: %v", err)
	}
}

func TestStopRemoveIdempotent(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, Config{Capacity: types.ResourceAmounts{MemoryBytes: 10}})
	if _, err := d.Start(ctx, cfgOf("t1", nil, types.ResourceAmounts{MemoryBytes: 10})); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.Stop(ctx, "t1", time.Second, "SIGINT"); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := d.Inspect(ctx, "t1")
	if st.State != driver.StateExited || st.ExitCode != 0 {
		t.Fatalf("stopped task %+v, want exited 0", st)
	}
	var logs strings.Builder
	if err := d.Logs(ctx, "t1", driver.LogOptions{}, &logs); err != nil || !strings.Contains(logs.String(), "stopped by SIGINT") {
		t.Fatalf("logs %q, %v; want the stop told", logs.String(), err)
	}
	for range 2 {
		if err := d.Remove(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Stop(ctx, "gone", time.Second, ""); err != nil {
		t.Fatalf("stop of an unknown task: %v", err)
	}
	if _, err := d.Inspect(ctx, "t1"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("removed task: %v, want ErrNotFound", err)
	}
}

func TestCancelledStartReleases(t *testing.T) {
	d := newDriver(t, Config{Capacity: types.ResourceAmounts{MemoryBytes: 10}, Default: Behaviour{StartDelay: time.Hour}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := d.Start(ctx, cfgOf("t1", nil, types.ResourceAmounts{MemoryBytes: 10}))
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for d.Used().MemoryBytes == 0 { // wait until the start holds its memory
		if time.Now().After(deadline) {
			t.Fatal("start never admitted")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled start: %v", err)
	}
	if u := d.Used(); u.MemoryBytes != 0 {
		t.Fatalf("a cancelled start still holds %d bytes", u.MemoryBytes)
	}
}

func TestExecAndCopyRefused(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, Config{})
	if _, err := d.Start(ctx, cfgOf("t1", nil, types.ResourceAmounts{})); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(ctx, "t1", driver.ExecOptions{Cmd: []string{"sh"}}, driver.ExecStreams{}); err == nil || !strings.Contains(err.Error(), "simulated") {
		t.Fatalf("exec: %v, want a refusal saying the task is simulated", err)
	}
	if err := d.CopyFrom(ctx, "t1", "/etc", 1<<20, func() {}, io.Discard); !errors.Is(err, driver.ErrCopyUnsupported) {
		t.Fatalf("copy from: %v, want ErrCopyUnsupported", err)
	}
	if err := d.CopyTo(ctx, "t1", "/tmp", 1<<20, strings.NewReader("")); !errors.Is(err, driver.ErrCopyUnsupported) {
		t.Fatalf("copy to: %v, want ErrCopyUnsupported", err)
	}
	if _, err := d.Exec(ctx, "gone", driver.ExecOptions{}, driver.ExecStreams{}); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("exec in an unknown task: %v, want ErrNotFound", err)
	}
}
