package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// TestVolumePinsThroughAPI: placing a replica that mounts a named volume
// pins it, the pins are listed, a bad slot is a 400 naming the field, and
// unpin removes a pin once (then 404).
func TestVolumePinsThroughAPI(t *testing.T) {
	s, c := startServer(t)
	ctx := context.Background()
	nc, _ := joinNode(t, s, "n1")
	reg, err := nc.RegisterNode(ctx, types.Node{Name: "n1", Address: "127.0.0.1:1", Drivers: []string{"docker"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SubmitApp(ctx, validApp()); err != nil {
		t.Fatal(err)
	}
	var pins []*types.VolumePin
	waitFor(t, 10*time.Second, "web.1 pinned to n1", func() bool {
		pins, err = c.VolumePins(ctx, "shop")
		return err == nil && len(pins) == 1 && pins[0].Replica() == "web.1" && pins[0].NodeID == reg.NodeID
	})

	for _, slot := range []string{"x", "0", "100000"} {
		req, _ := http.NewRequest(http.MethodDelete, "http://"+s.Addr()+"/v1/apps/shop/services/web/pins?slot="+slot, nil)
		req.Header.Set(api.HeaderAuthorization, "Bearer "+s.AdminToken())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body api.ErrorBody
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || body.Field != "slot" {
			t.Fatalf("slot=%s: %d %+v, want 400 naming slot", slot, resp.StatusCode, body)
		}
	}
	removed, err := c.Unpin(ctx, "shop", "web", 1)
	if err != nil || len(removed) != 1 || removed[0].NodeID != reg.NodeID {
		t.Fatalf("unpin web.1: %+v, %v", removed, err)
	}
	if _, err := c.Unpin(ctx, "shop", "web", 1); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second unpin: %v, want not found", err)
	}
	if pins, err := c.VolumePins(ctx, "nope"); err != nil || len(pins) != 0 {
		t.Fatalf("pins of an app that is not deployed: %v, %v; want an empty list", pins, err)
	}
}
