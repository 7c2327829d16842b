package machine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDriver is a Driver of function fields, for the orchestration's unit
// test only; the local driver's end-to-end test is the real proof.
type fakeDriver struct {
	check  func(Spec) error
	create func(ctx context.Context, s Spec) (*Host, error)

	mu      sync.Mutex
	created []Spec
	removed []string
}

func (f *fakeDriver) Name() string { return "fake" }
func (f *fakeDriver) Check(s Spec) error {
	if (s.Join.Addr == "") != (s.Role == RoleManager && s.Name == "m1") {
		return fmt.Errorf("%s checked with join %+v", s.Name, s.Join)
	}
	if f.check != nil {
		return f.check(s)
	}
	return nil
}
func (f *fakeDriver) Create(ctx context.Context, s Spec, p Progress) (*Host, error) {
	f.mu.Lock()
	f.created = append(f.created, s)
	f.mu.Unlock()
	if p != nil {
		p(s.Name, "create")
	}
	if f.create != nil {
		return f.create(ctx, s)
	}
	return fakeHost(s), nil
}
func fakeHost(s Spec) *Host {
	h := &Host{Name: s.Name, Cluster: s.Cluster, Driver: "fake", Role: s.Role, Address: "10.9.0." + s.Name[1:],
		Local: map[string]string{"dir": "/x/" + s.Name}}
	if s.Join.Addr == "" {
		h.AdminToken, h.CACert = "BERTHADM-x", []byte("ca")
	}
	return h
}
func (f *fakeDriver) Start(context.Context, *Host) error { return nil }
func (f *fakeDriver) Stop(context.Context, *Host) error  { return nil }
func (f *fakeDriver) Remove(_ context.Context, h *Host, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, h.Name)
	return nil
}
func (f *fakeDriver) Status(context.Context, *Host) (State, error) { return StateRunning, nil }
func (f *fakeDriver) Exec(context.Context, *Host, []string, Stdio) (int, error) {
	return 0, nil
}

func maker(t *testing.T, d *fakeDriver) (*ClusterMaker, *Store) {
	st := NewStore(filepath.Join(t.TempDir(), "m"))
	return &ClusterMaker{Driver: d, Store: st, Tokens: func(_ context.Context, first *Host) (Tokens, error) {
		if first.Name != "m1" || first.AdminToken == "" {
			return Tokens{}, fmt.Errorf("tokens asked of %s", first.Name)
		}
		return Tokens{Worker: "W", Manager: "M"}, nil
	}}, st
}

// TestClusterCreate: m1 bootstraps alone, then the others join it with the
// token of their role; agents get the images, managers the registry's GC
// grace; every host is stored.
func TestClusterCreate(t *testing.T) {
	d := &fakeDriver{}
	m, st := maker(t, d)
	res, err := m.Create(context.Background(), ClusterSpec{Name: "t1", Managers: 3, Agents: 2, Images: []string{"img"}, RegistryGCGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.AdminToken != "BERTHADM-x" || len(res.Hosts) != 5 {
		t.Fatalf("result: %+v", res)
	}
	if d.created[0].Name != "m1" || d.created[0].Join.Addr != "" {
		t.Fatalf("first created: %+v, want m1 bootstrapping", d.created[0])
	}
	for _, s := range d.created {
		if want := map[Role]time.Duration{RoleManager: time.Minute}[s.Role]; s.RegistryGCGrace != want {
			t.Errorf("%s: registry GC grace %s, want %s", s.Name, s.RegistryGCGrace, want)
		}
	}
	for _, s := range d.created[1:] {
		wantTok, wantImages := "W", []string{"img"}
		if s.Role == RoleManager {
			wantTok, wantImages = "M", nil
		}
		if s.Join.Addr != "10.9.0.1:7702" || s.Join.Token != wantTok || !slices.Equal(s.Images, wantImages) || s.Cluster != "t1" {
			t.Errorf("%s: %+v, want join 10.9.0.1:7702 with %s, images %v", s.Name, s, wantTok, wantImages)
		}
	}
	hs, _ := st.List("t1")
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
		if h.Local["dir"] == "" {
			t.Errorf("%s stored without its driver record", h.Name)
		}
	}
	if !slices.Equal(names, []string{"a1", "a2", "m1", "m2", "m3"}) {
		t.Fatalf("stored %v", names)
	}
}

// TestClusterCreateUndo: a host that fails undoes the whole cluster: every
// host made is removed, no record stays, and the error names the host and
// its step.
func TestClusterCreateUndo(t *testing.T) {
	for _, failing := range []string{"m1", "m2", "a2"} {
		t.Run(failing, func(t *testing.T) {
			d := &fakeDriver{create: func(ctx context.Context, s Spec) (*Host, error) {
				if s.Name == failing {
					return nil, errors.New("start engine: dockerd exited")
				}
				return fakeHost(s), nil
			}}
			m, st := maker(t, d)
			_, err := m.Create(context.Background(), ClusterSpec{Name: "t1", Managers: 3, Agents: 3})
			if err == nil || !strings.HasPrefix(err.Error(), failing+": start engine") {
				t.Fatalf("error %v, want it to name %s and its step", err, failing)
			}
			made := len(d.created) - 1
			if len(d.removed) != made {
				t.Fatalf("made %d hosts besides %s, removed %v", made, failing, d.removed)
			}
			if hs, _ := st.List("t1"); len(hs) != 0 {
				t.Fatalf("records left: %v", hs)
			}
		})
	}
}

func TestCheckClusterSpec(t *testing.T) {
	for _, tc := range []struct {
		spec ClusterSpec
		want string
	}{
		{ClusterSpec{Managers: 1}, ""},
		{ClusterSpec{Managers: 5, Agents: 50}, ""},
		{ClusterSpec{Managers: 2}, "--managers 2"},
		{ClusterSpec{Managers: 0}, "--managers 0"},
		{ClusterSpec{Managers: 1, Agents: -1}, "--agents -1"},
		{ClusterSpec{Managers: 1, Agents: 51}, "--agents 51"},
		{ClusterSpec{Managers: 1, Images: []string{""}}, "--image"},
	} {
		err := CheckClusterSpec(tc.spec)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// TestRemoveAll removes every stored host through its driver with no
// cluster to ask, and drops the records.
func TestRemoveAll(t *testing.T) {
	d := &fakeDriver{}
	m, st := maker(t, d)
	if _, err := m.Create(context.Background(), ClusterSpec{Name: "t1", Managers: 1, Agents: 2}); err != nil {
		t.Fatal(err)
	}
	err := RemoveAll(context.Background(), func(string) (Driver, error) { return d, nil }, st, "t1", nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(d.removed)
	if !slices.Equal(d.removed, []string{"a1", "a2", "m1"}) {
		t.Fatalf("removed %v", d.removed)
	}
	if hs, _ := st.List("t1"); len(hs) != 0 {
		t.Fatalf("records left: %v", hs)
	}
}

// flakyRemove fails each host's first Remove, as the local driver's does
// when a veth vanishes with its namespace between its check and its
// delete.
type flakyRemove struct {
	fakeDriver
	tries map[string]int
}

func (f *flakyRemove) Remove(ctx context.Context, h *Host, force bool) error {
	f.mu.Lock()
	f.tries[h.Name]++
	n := f.tries[h.Name]
	f.mu.Unlock()
	if n == 1 {
		return errors.New(`ip link del: Cannot find device "vb1"`)
	}
	return f.fakeDriver.Remove(ctx, h, force)
}

// TestRemoveAllSecondPass: a part gone while it was removed does not
// leave the cluster's records behind.
func TestRemoveAllSecondPass(t *testing.T) {
	d := &flakyRemove{tries: map[string]int{}}
	st := NewStore(filepath.Join(t.TempDir(), "m"))
	for _, n := range []string{"m1", "a1"} {
		if err := st.Put(&Host{Name: n, Cluster: "t1", Driver: "fake"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveAll(context.Background(), func(string) (Driver, error) { return d, nil }, st, "t1", nil); err != nil {
		t.Fatal(err)
	}
	if hs, _ := st.List("t1"); len(hs) != 0 {
		t.Fatalf("records left: %v", hs)
	}
}
