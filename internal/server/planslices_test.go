package server

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestPlanWithExhaustedNetworkPlacesTheRest: on a cluster whose pool gives
// each network room for one node, a deploy of one service on a network
// (one replica a node, three nodes) and one on no network places all of
// the second and one replica of the first; the two that can get no
// address stay pending, saying the pool is exhausted and which setting to
// change, instead of the whole plan failing.
func TestPlanWithExhaustedNetworkPlacesTheRest(t *testing.T) {
	s, c := startServerWith(t, func(cfg *Config) {
		cfg.AddressPool = netip.MustParsePrefix("10.50.0.0/23")
		cfg.AddressSlice = 25 // a /24 network: the VIPs' /25 and one node's
	})
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		nc, _ := joinNode(t, s, fmt.Sprintf("n%d", i))
		if _, err := nc.RegisterNode(ctx, types.Node{Name: fmt.Sprintf("n%d", i), Address: "127.0.0.1:1", Drivers: []string{types.DriverExec}}); err != nil {
			t.Fatal(err)
		}
	}
	app := &types.App{
		Name:     "shop",
		Networks: map[string]*types.Network{"default": {Name: "default"}},
		Services: []*types.Service{{
			Name: "web", Driver: types.DriverExec, Command: []string{"/bin/true"}, Replicas: 3,
			Networks:  []types.NetworkAttachment{{Name: "default"}},
			Placement: types.Placement{MaxReplicasPerNode: 1},
		}, {
			Name: "worker", Driver: types.DriverExec, Command: []string{"/bin/true"}, Replicas: 3,
		}},
	}
	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	var verdict error
	waitFor(t, 10*time.Second, "worker placed, one web placed, two pending for want of addresses", func() bool {
		tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: "shop"})
		if err != nil {
			verdict = err
			return false
		}
		verdict = exhaustedVerdict(tasks)
		return verdict == nil
	})
	if verdict != nil {
		t.Fatal(verdict)
	}
}

// exhaustedVerdict is TestPlanWithExhaustedNetworkPlacesTheRest's check
// of a task listing.
func exhaustedVerdict(tasks []*types.Task) error {
	placed := map[string]int{}
	var reasons []string
	for _, t := range tasks {
		switch {
		case t.NodeID != "" && t.State != types.TaskPending:
			placed[t.Service]++
		case t.Service == "web" && t.State == types.TaskPending:
			reasons = append(reasons, t.PendingReason)
		}
	}
	if placed["worker"] != 3 || placed["web"] != 1 || len(reasons) != 2 {
		return fmt.Errorf("placed %v, web pending with %q: want 3 workers, 1 web placed and 2 web pending", placed, reasons)
	}
	for _, r := range reasons {
		if !strings.Contains(r, "no address for the task") || !strings.Contains(r, "no free slice for node") || !strings.Contains(r, "--address-slice") {
			return fmt.Errorf("pending reason %q does not say the pool is exhausted and what to change", r)
		}
	}
	return nil
}
