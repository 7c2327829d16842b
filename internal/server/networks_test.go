package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestNetworkAndVolumeRoutes runs the routes on a real manager: create
// (with and without a subnet), the refusals with their statuses, an app
// joining the network as external, ls and inspect with owners and
// services, rm refused while the app declares it, and the volumes the app
// declares.
func TestNetworkAndVolumeRoutes(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	// A node that cannot run web (docker): its tasks stay pending, and
	// scaled to 0 they go, as no agent needs to report them.
	nc, nodeID := joinNode(t, s, "n1")
	if _, err := nc.RegisterNode(ctx, types.Node{Name: "n1", Address: "127.0.0.1:1", Drivers: []string{"exec"}}); err != nil {
		t.Fatal(err)
	}
	status := func(err error) int {
		var ae *api.Error
		if errors.As(err, &ae) {
			return ae.Status
		}
		return 0
	}

	app := validApp()
	app.Networks["ext"] = &types.Network{Name: "shared", External: true}
	app.Services[0].Networks = append(app.Services[0].Networks, types.NetworkAttachment{Name: "ext"})
	if _, err := c.SubmitApp(ctx, app); status(err) != http.StatusBadRequest ||
		!strings.Contains(err.Error(), "network shared declared as external, but could not be found; run berth network create shared") {
		t.Fatalf("an app on a network nobody created: %v", err)
	}

	n, err := c.CreateNetwork(ctx, api.NetworkCreate{Name: "shared", Internal: true, Labels: map[string]string{"team": "a"}})
	if err != nil || n.Scope != api.ScopeCluster || n.Subnet == "" || !n.Internal {
		t.Fatalf("create: %+v, %v", n, err)
	}
	for _, tc := range []struct {
		req  api.NetworkCreate
		want int
		msg  string
	}{
		{api.NetworkCreate{Name: "shared"}, http.StatusConflict, "already exists"},
		{api.NetworkCreate{Name: "other", Subnet: n.Subnet}, http.StatusConflict, "overlaps network shared"},
		{api.NetworkCreate{Name: "bad", Subnet: "300.0.0.0/8"}, http.StatusBadRequest, "subnet"},
		{api.NetworkCreate{Name: "-x"}, http.StatusBadRequest, "name"},
		{api.NetworkCreate{Name: "bridge"}, http.StatusBadRequest, "every Docker engine has"},
		{api.NetworkCreate{Name: "lbl", Labels: map[string]string{"berth.app": "x"}}, http.StatusBadRequest, "labels"},
	} {
		if _, err := c.CreateNetwork(ctx, tc.req); status(err) != tc.want || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("create %+v: %v, want %d saying %q", tc.req, err, tc.want, tc.msg)
		}
	}

	if _, err := c.SubmitApp(ctx, app); err != nil {
		t.Fatalf("submit on the created network: %v", err)
	}
	nets, err := c.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]api.Network{}
	for _, n := range nets {
		byName[n.Name] = n
	}
	if own := byName["shop_default"]; own.Scope != api.ScopeApp || own.App != "shop" {
		t.Errorf("shop_default = %+v, want the app's own", own)
	}
	if sh := byName["shared"]; len(sh.Apps) != 1 || sh.Apps[0] != "shop" || len(sh.Services) != 1 || sh.Services[0] != "shop/web" {
		t.Errorf("shared = %+v, want used by shop, web on it", sh)
	}
	if err := c.RemoveNetwork(ctx, "shared"); status(err) != http.StatusConflict || !strings.Contains(err.Error(), "in use by app shop") {
		t.Errorf("rm while in use: %v", err)
	}
	if err := c.RemoveNetwork(ctx, "shop_default"); status(err) != http.StatusConflict || !strings.Contains(err.Error(), "app shop's own network") {
		t.Errorf("rm of an app's own network: %v", err)
	}
	if _, err := c.Network(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("inspect nope: %v", err)
	}

	vols, err := c.Volumes(ctx)
	if err != nil || len(vols) != 1 || vols[0].Name != "shop_data" || vols[0].App != "shop" || vols[0].Driver != "local" {
		t.Errorf("volumes %+v, %v", vols, err)
	}
	if _, err := c.Volume(ctx, "shop_data"); err != nil {
		t.Errorf("volume inspect: %v", err)
	}

	// volume rm: refused while web's tasks mount it, then each node's copy.
	if _, err := c.RemoveVolume(ctx, "shop_data"); status(err) != http.StatusConflict || !strings.Contains(err.Error(), "in use by task shop-web-1") {
		t.Fatalf("rm while mounted: %v", err)
	}
	if err := c.Scale(ctx, "shop", "web", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "web's tasks gone", func() bool {
		v, err := c.Volume(ctx, "shop_data")
		return err == nil && len(v.Tasks) == 0
	})
	v, err := c.RemoveVolume(ctx, "shop_data")
	if err != nil || len(v.Removing) != 1 || v.Removing[0] != "n1" {
		t.Fatalf("rm: %+v, %v; want n1 to remove its copy", v, err)
	}
	nt, _, err := nc.NodeTasks(ctx, nodeID, api.QueryOptions{})
	if err != nil || len(nt.RemoveVolumes) != 1 || nt.RemoveVolumes[0] != (api.VolumeRef{App: "shop", Name: "shop_data"}) {
		t.Fatalf("node tasks ask to remove %+v (%v), want shop_data", nt.RemoveVolumes, err)
	}
	if err := nc.ReportVolumeRemoved(ctx, nodeID, "shop_data"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Volume(ctx, "shop_data"); err != nil || len(v.Removing) != 0 {
		t.Errorf("after the node's report: %+v, %v; want nothing left to remove", v, err)
	}
}
