package state

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

// sharedApp is an app named name whose service "api" joins its own network
// "own" (with subnet, when given) and, when ext is set, the cluster
// network ext declared external (under key "ext", named ext).
func sharedApp(name, ext, subnet string) *types.App {
	app := &types.App{Name: name, Services: []*types.Service{{Name: "api", Image: "api:1", Mode: types.ModeReplicated, Replicas: 1}}}
	app.Networks = map[string]*types.Network{"own": {Name: "own", Subnet: subnet}}
	app.Services[0].Networks = []types.NetworkAttachment{{Name: "own"}}
	if ext != "" {
		app.Networks["ext"] = &types.Network{Name: ext, External: true}
		app.Services[0].Networks = append(app.Services[0].Networks, types.NetworkAttachment{Name: "ext"})
	}
	return app
}

// TestClusterNetworks replays command sequences: each step's error must
// wrap want (nil: succeed) and its message hold every part of msg.
func TestClusterNetworks(t *testing.T) {
	type step struct {
		cmd  Command
		want error
		msg  []string
	}
	create := func(name, subnet string) CreateNetwork { return CreateNetwork{Name: name, Subnet: subnet, Now: t0} }
	up := func(app *types.App) UpsertApp { return UpsertApp{App: app, Now: t0} }
	cases := []struct {
		name  string
		steps []step
		// check, when set, looks at the store after the steps.
		check func(t *testing.T, v *View)
	}{
		{name: "create from the pool, then a chosen subnet", steps: []step{
			{cmd: create("shared", "")},
			{cmd: create("fixed", "10.100.0.0/16")},
		}, check: func(t *testing.T, v *View) {
			if n := v.ClusterNetwork("shared"); n == nil || n.Subnet != "10.240.0.0/20" || n.Chosen {
				t.Errorf("shared = %+v, want the pool's first /20", n)
			}
			if n := v.ClusterNetwork("fixed"); n == nil || n.Subnet != "10.100.0.0/16" || !n.Chosen {
				t.Errorf("fixed = %+v, want 10.100.0.0/16 as chosen", n)
			}
			if s, _ := v.Pool().Subnet("fixed"); s != netip.MustParsePrefix("10.100.0.0/16") {
				t.Errorf("pool subnet of fixed %s", s)
			}
		}},
		{name: "refusals at create", steps: []step{
			{cmd: create("shared", "10.100.0.0/16")},
			{cmd: create("shared", ""), want: ErrConflict, msg: []string{"network shared already exists"}},
			{cmd: create("other", "10.100.128.0/17"), want: ErrConflict, msg: []string{"overlaps network shared (10.100.0.0/16)"}},
			{cmd: create("bad", "10.1.2.3"), want: ErrInvalid, msg: []string{`subnet "10.1.2.3"`}},
			{cmd: create("bits", "10.1.0.1/16"), want: ErrInvalid, msg: []string{"host bits"}},
			{cmd: create("", ""), want: ErrInvalid, msg: []string{"network name"}},
			{cmd: up(sharedApp("web", "", ""))},
			{cmd: create("web_own", ""), want: ErrConflict, msg: []string{"app web's own network"}},
		}},
		{name: "an app may not declare a network nobody created", steps: []step{
			{cmd: up(sharedApp("web", "shared", "")), want: ErrInvalid,
				msg: []string{"network shared declared as external, but could not be found; run berth network create shared"}},
		}, check: func(t *testing.T, v *View) {
			if v.App("web") != nil || len(v.Pool().NetworkIDs()) != 0 {
				t.Errorf("a refused app left state behind: %v", v.Pool().NetworkIDs())
			}
		}},
		{name: "rm refuses while an app uses it, naming the apps", steps: []step{
			{cmd: CreateNetwork{Name: "shared", Internal: true, Now: t0}},
			{cmd: up(sharedApp("web", "shared", ""))},
			{cmd: up(sharedApp("blog", "shared", ""))},
			{cmd: DeleteNetwork{Name: "shared"}, want: ErrConflict, msg: []string{"in use by app blog, web"}},
			{cmd: PurgeApp{Name: "web"}},
			{cmd: PurgeApp{Name: "blog"}},
			{cmd: DeleteNetwork{Name: "shared"}},
			{cmd: DeleteNetwork{Name: "shared"}, want: ErrNotFound},
		}, check: func(t *testing.T, v *View) {
			if got := v.Pool().NetworkIDs(); len(got) != 0 {
				t.Errorf("pool after rm %v, want empty", got)
			}
		}},
		{name: "an app's own network may not take a cluster network's name", steps: []step{
			{cmd: create("web_own", "")},
			{cmd: up(sharedApp("web", "", "")), want: ErrConflict, msg: []string{"network web_own is a cluster network"}},
		}},
		{name: "ipam: an app's subnet as given, an overlap refused naming the network", steps: []step{
			{cmd: create("shared", "10.100.0.0/16")},
			{cmd: up(sharedApp("web", "shared", "10.200.0.0/20"))},
			{cmd: up(sharedApp("blog", "", "10.100.4.0/22")), want: ErrConflict,
				msg: []string{"network own of service api", "overlaps network shared"}},
			{cmd: up(sharedApp("web", "shared", "10.201.0.0/20")), want: ErrConflict, msg: []string{"already has subnet 10.200.0.0/20"}},
			{cmd: up(sharedApp("wiki", "", "10.300.0.0/20")), want: ErrInvalid, msg: []string{"ipam subnet"}},
		}, check: func(t *testing.T, v *View) {
			if s, _ := v.Pool().Subnet("web_own"); s != netip.MustParsePrefix("10.200.0.0/20") {
				t.Errorf("web_own subnet %s, want 10.200.0.0/20", s)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for i, s := range tc.steps {
				_, err := h.apply(s.cmd)
				switch {
				case s.want == nil && err != nil:
					t.Fatalf("step %d %T: %v", i, s.cmd, err)
				case s.want != nil && !errors.Is(err, s.want):
					t.Fatalf("step %d %T: error %v, want one wrapping %v", i, s.cmd, err, s.want)
				}
				for _, m := range s.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("step %d %T: error %q does not say %q", i, s.cmd, err, m)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, h.store.View())
			}
		})
	}
}

// TestClusterNetworkJoinAndSnapshot: an app that declares a cluster network
// gets its internal flag and node slices on it, and a snapshot carries the
// record.
func TestClusterNetworkJoinAndSnapshot(t *testing.T) {
	h := newHarness(t)
	h.mustApply(CreateNetwork{Name: "shared", Internal: true, Labels: map[string]string{"team": "a"}, Now: t0})
	h.mustApply(UpsertApp{App: sharedApp("web", "shared", ""), Now: t0})
	if n := h.store.View().App("web").Networks["ext"]; !n.Internal || n.Labels["team"] != "a" {
		t.Errorf("the app's record of the cluster network %+v, want its internal flag and labels", n)
	}
	task := &types.Task{ID: "t1", App: "web", Service: "api", Slot: 1, ServiceVersion: 1}
	h.mustApply(TaskUpdates{Create: []*types.Task{task}, Now: t0})
	h.mustApply(TaskUpdates{Assign: []Assignment{{TaskID: "t1", NodeID: "n1"}}, Now: t0})
	if s := h.store.View().Pool().Slices("shared"); !s["n1"].IsValid() {
		t.Errorf("slices of shared %v, want one for n1", s)
	}
	if got := h.store.View().NetworkUsers("shared"); len(got) != 1 || got[0] != "web" {
		t.Errorf("users %v", got)
	}

	dst := newHarness(t)
	if err := dst.fsm.Restore(ioNopCloser(snapshotOf(t, h.fsm))); err != nil {
		t.Fatal(err)
	}
	a, b := h.store.View().ClusterNetworks(), dst.store.View().ClusterNetworks()
	if len(b) != 1 || !jsonEqual(a, b) {
		t.Errorf("restored networks %+v, want %+v", b, a)
	}
}
