package server

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

func TestNodeOperationsThroughAPI(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	var ids []string
	for _, name := range []string{"alpha", "beta"} {
		nc, _ := joinNode(t, s, name)
		reg, err := nc.RegisterNode(ctx, types.Node{Name: name, Address: "127.0.0.1:1", Drivers: []string{"exec"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, reg.NodeID)
	}
	// By name, by ID prefix.
	n, err := c.UpdateNodeLabels(ctx, "alpha", api.LabelsRequest{Add: map[string]string{"zone": "a"}})
	if err != nil || n.Labels["zone"] != "a" {
		t.Fatalf("label add: %+v %v", n, err)
	}
	n, err = c.SetNodeAvailability(ctx, ids[1][:6], types.AvailabilityDrain)
	if err != nil || n.Availability != types.AvailabilityDrain || n.Name != "beta" {
		t.Fatalf("drain by prefix: %+v %v", n, err)
	}
	cases := []struct {
		name   string
		call   func() error
		status int
	}{
		{"bad availability", func() error { _, err := c.SetNodeAvailability(ctx, "alpha", "paused"); return err }, 400},
		{"bad label key", func() error {
			_, err := c.UpdateNodeLabels(ctx, "alpha", api.LabelsRequest{Add: map[string]string{"bad key!": "x"}})
			return err
		}, 400},
		{"no labels", func() error { _, err := c.UpdateNodeLabels(ctx, "alpha", api.LabelsRequest{}); return err }, 400},
		{"unknown node", func() error { _, err := c.SetNodeAvailability(ctx, "gamma", types.AvailabilityDrain); return err }, 404},
		{"remove ready node", func() error { return c.RemoveNode(ctx, "alpha", false) }, http.StatusConflict},
	}
	for _, tc := range cases {
		var ae *api.Error
		if err := tc.call(); !errors.As(err, &ae) || ae.Status != tc.status {
			t.Errorf("%s: err %v, want status %d", tc.name, err, tc.status)
		}
	}
	if err := c.RemoveNode(ctx, "alpha", true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetNode(ctx, "alpha"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("removed node still found: %v", err)
	}
}
