package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

func appOf(replicas ...int) *types.App {
	app := &types.App{Name: "big"}
	for i, r := range replicas {
		mode := types.ModeReplicated
		if r < 0 {
			mode, r = types.ModeGlobal, 0
		}
		app.Services = append(app.Services, &types.Service{Name: fmt.Sprintf("s%d", i), Mode: mode, Replicas: r})
	}
	return app
}

func TestLimitsCheckApp(t *testing.T) {
	l := Limits{TasksPerApp: 100, TasksPerCluster: 150, ServicesPerApp: 3, ReplicasPerService: 60}
	cases := []struct {
		name          string
		app           *types.App
		nodes, others int
		field, flag   string // "" means within the limits
	}{
		{"within", appOf(50, 50), 0, 50, "", ""},
		{"too many services", appOf(1, 1, 1, 1), 0, 0, "services", FlagServicesPerApp},
		{"too many replicas", appOf(61), 0, 0, "services.s0.replicas", FlagReplicasPerService},
		{"too many tasks in the app", appOf(60, 41), 0, 0, "services", FlagTasksPerApp},
		{"global services count per node", appOf(60, -1), 41, 0, "services", FlagTasksPerApp},
		{"global within", appOf(60, -1), 40, 0, "", ""},
		{"too many tasks in the cluster", appOf(50, 50), 0, 51, "services", FlagTasksPerCluster},
		{"the cluster at the limit", appOf(50, 50), 0, 50, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := l.checkApp(tc.app, tc.nodes, tc.others)
			checkLimitError(t, err, tc.field, tc.flag)
		})
	}
}

func TestLimitsCheckScale(t *testing.T) {
	l := Limits{TasksPerApp: 100, TasksPerCluster: 150, ServicesPerApp: 3, ReplicasPerService: 60}
	app := appOf(40, 40)
	cases := []struct {
		name        string
		replicas    int
		others      int
		field, flag string
	}{
		{"up to the app limit with the other service", 60, 0, "", ""},
		{"to zero", 0, 0, "", ""},
		{"beyond the service limit", 61, 0, "replicas", FlagReplicasPerService},
		{"beyond the cluster limit", 60, 51, "services", FlagTasksPerCluster},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkLimitError(t, l.checkScale(app, "s0", tc.replicas, 0, tc.others), tc.field, tc.flag)
		})
	}
	big := appOf(50, 50)
	checkLimitError(t, l.checkScale(big, "s0", 51, 0, 0), "services", FlagTasksPerApp)
}

func checkLimitError(t *testing.T, err error, field, flag string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want a refusal of %s", err, field)
	}
	if ae.status != http.StatusUnprocessableEntity || ae.field != field || !strings.Contains(ae.msg, "--"+flag) {
		t.Errorf("got %d %q %q, want 422 naming %s and --%s", ae.status, ae.field, ae.msg, field, flag)
	}
}

func TestLimitsFillDefaults(t *testing.T) {
	l := Limits{TasksPerApp: 7}
	l.fill()
	want := DefaultLimits()
	want.TasksPerApp = 7
	if l != want {
		t.Errorf("filled %+v, want %+v", l, want)
	}
}

// TestLimitsAtSubmit: a real manager refuses a PUT app and a scale beyond
// its limits with 422 naming the limit and the flag, counting the other
// apps' tasks against the cluster limit, and accepts what fits.
func TestLimitsAtSubmit(t *testing.T) {
	_, c := startServerWith(t, func(cfg *Config) {
		cfg.Limits = Limits{TasksPerApp: 10, TasksPerCluster: 15}
	})
	ctx := context.Background()
	app := func(name string, replicas int) *types.App {
		return &types.App{Name: name, Services: []*types.Service{{Name: "web", Image: "web:1", Replicas: replicas}}}
	}
	refused := func(err error, flag string) {
		t.Helper()
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || !strings.Contains(ae.Error(), "--"+flag) {
			t.Fatalf("err = %v, want 422 naming --%s", err, flag)
		}
	}
	_, err := c.SubmitApp(ctx, app("one", 11))
	refused(err, FlagTasksPerApp)
	if _, err := c.SubmitApp(ctx, app("one", 10)); err != nil {
		t.Fatal(err)
	}
	_, err = c.SubmitApp(ctx, app("two", 6))
	refused(err, FlagTasksPerCluster)
	if _, err := c.SubmitApp(ctx, app("two", 5)); err != nil {
		t.Fatal(err)
	}
	refused(c.Scale(ctx, "two", "web", 6), FlagTasksPerCluster)
	refused(c.Scale(ctx, "one", "web", 11), FlagTasksPerApp)
	if err := c.Scale(ctx, "one", "web", 4); err != nil {
		t.Fatal(err)
	}
	if err := c.Scale(ctx, "two", "web", 10); err != nil {
		t.Fatalf("scale within the limits once one shrank: %v", err)
	}
	// Resubmitting an app counts its new size, not old plus new.
	if _, err := c.SubmitApp(ctx, app("two", 11)); err == nil {
		t.Fatal("app two at 11 tasks accepted beyond the per-app limit")
	}
	if _, err := c.SubmitApp(ctx, app("two", 10)); err != nil {
		t.Fatal(err)
	}
	// The default bounds stop the runaway of the issue: 1,000 x 10,000.
	huge := &types.App{Name: "huge"}
	for i := range 1000 {
		huge.Services = append(huge.Services, &types.Service{Name: fmt.Sprintf("s%d", i), Image: "x", Replicas: 10000})
	}
	if err := DefaultLimits().checkApp(huge, 0, 0); err == nil {
		t.Error("1,000 services x 10,000 replicas passed the default limits")
	}
}
