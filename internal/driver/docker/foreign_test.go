package docker

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/types"
)

// TestForeignNetwork: which networks of a name berth may join, and what it
// says of the others.
func TestForeignNetwork(t *testing.T) {
	ours := network.Summary{Network: network.Network{ID: "ours", Labels: map[string]string{LabelApp: "web", labelComposeProject: "web"}}}
	cluster := network.Summary{Network: network.Network{ID: "cluster", Labels: map[string]string{LabelNetwork: "web_default"}}}
	compose := network.Summary{Network: network.Network{ID: "compose", Labels: map[string]string{labelComposeProject: "web"}}}
	bare := network.Summary{Network: network.Network{ID: "bare"}}
	other := network.Summary{Network: network.Network{ID: "other", Labels: map[string]string{LabelApp: "web_x"}}}
	for _, tc := range []struct {
		name     string
		external bool
		found    []network.Summary
		ours     int    // berth's networks handed back
		id       string // the foreign network used as it is
		err      string
	}{
		{"none", false, nil, 0, "", ""},
		{"berth's own", false, []network.Summary{ours}, 1, "", ""},
		{"a cluster network berth made", true, []network.Summary{cluster}, 1, "", ""},
		{"a foreign twin beside berth's is left alone", false, []network.Summary{compose, ours}, 1, "", ""},
		{"compose's", false, []network.Summary{compose}, 0, "", "made by Compose project web (com.docker.compose.project), not by berth"},
		{"no labels", false, []network.Summary{bare}, 0, "", "made by another tool, not by berth (it has no berth labels)"},
		{"another berth app's", false, []network.Summary{other}, 0, "", "made by berth app web_x, not this one"},
		{"external: used as it is", true, []network.Summary{compose}, 0, "compose", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, id, ok, err := foreignNetwork("web", "web_default", tc.external, tc.found)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "declare it external") {
					t.Fatalf("err = %v, want one saying %q and how to go on", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case len(got) != tc.ours || id != tc.id || ok != (tc.id != ""):
				t.Fatalf("= %d ours, %q, %v; want %d, %q", len(got), id, ok, tc.ours, tc.id)
			}
		})
	}
}

// TestForeignResourcesRefused: on a real engine, a network and a volume of
// the names berth would use, made without berth's labels (as docker
// compose makes them), fail the task naming their owner and stay as they
// are; marked external, the same network and volume are used as they are.
func TestForeignResourcesRefused(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	compose := map[string]string{labelComposeProject: e.app}
	netName, volName := e.app+"_default", e.app+"_data"
	nres, err := d.cli.NetworkCreate(e.ctx, netName, client.NetworkCreateOptions{Driver: "bridge", Labels: compose})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = d.cli.NetworkRemove(e.ctx, nres.ID, client.NetworkRemoveOptions{}) })
	if _, err := d.cli.VolumeCreate(e.ctx, client.VolumeCreateOptions{Name: volName, Labels: compose}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = d.cli.VolumeRemove(e.ctx, volName, client.VolumeRemoveOptions{Force: true}) })

	_, err = d.Start(e.ctx, e.task("web", 1, nil))
	if err == nil || !strings.Contains(err.Error(), "network "+netName+" on this node exists and was made by Compose project "+e.app) {
		t.Fatalf("start on a Compose network: %v, want a refusal naming the project", err)
	}
	// The volume is checked with the network berth made for it.
	_, err = d.Start(e.ctx, e.task("db", 1, func(s *types.Service) {
		s.Networks = []types.NetworkAttachment{{Name: "back"}}
		s.Mounts = []types.Mount{{Type: types.MountVolume, Source: "data", Target: "/data"}}
	}))
	if err == nil || !strings.Contains(err.Error(), "volume "+volName+" on this node exists and was made by Compose project "+e.app) {
		t.Fatalf("start on a Compose volume: %v, want a refusal naming the project", err)
	}
	if in, err := d.cli.NetworkInspect(e.ctx, nres.ID, client.NetworkInspectOptions{}); err != nil || len(in.Network.Containers) != 0 {
		t.Fatalf("the foreign network was changed or removed: %v", err)
	}

	// Marked external, both are used as they are.
	cfg := e.task("web", 2, func(s *types.Service) {
		s.Networks = []types.NetworkAttachment{{Name: "shared"}}
		s.Mounts = []types.Mount{{Type: types.MountVolume, Source: "ext", Target: "/data"}}
	})
	cfg.Networks["shared"] = &types.Network{Name: netName, External: true}
	cfg.Volumes["ext"] = &types.Volume{Name: volName, External: true}
	e.start(d, cfg)
	in, err := d.cli.NetworkInspect(e.ctx, nres.ID, client.NetworkInspectOptions{})
	if err != nil || len(in.Network.Containers) != 1 {
		t.Fatalf("the external network has %d containers (%v), want the task's", len(in.Network.Containers), err)
	}
	if err := d.Remove(e.ctx, cfg.Task.ID); err != nil {
		t.Fatal(err)
	}
}

// TestRemoveVolume: RemoveVolume removes the volume berth made for the
// app, and leaves one of another owner and one that is not there.
func TestRemoveVolume(t *testing.T) {
	e := newEnv(t)
	d := e.driver("n1")
	ours, theirs := e.app+"_data", e.app+"_theirs"
	if err := d.ensurer.volume(e.ctx, e.app, ours, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.cli.VolumeCreate(e.ctx, client.VolumeCreateOptions{Name: theirs, Labels: map[string]string{labelComposeProject: e.app}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = d.cli.VolumeRemove(e.ctx, theirs, client.VolumeRemoveOptions{Force: true}) })
	for _, name := range []string{ours, theirs, e.app + "_never"} {
		if err := d.RemoveVolume(e.ctx, e.app, name); err != nil {
			t.Errorf("RemoveVolume %s: %v", name, err)
		}
	}
	if _, err := d.cli.VolumeInspect(e.ctx, ours, client.VolumeInspectOptions{}); err == nil {
		t.Errorf("volume %s survived RemoveVolume", ours)
	}
	if _, err := d.cli.VolumeInspect(e.ctx, theirs, client.VolumeInspectOptions{}); err != nil {
		t.Errorf("a volume berth did not make was removed: %v", err)
	}
}
