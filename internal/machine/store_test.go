package machine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStore: records are 0600 in 0700 directories, a reserved name is
// taken, no token is written, lists skip the cluster record, and removing
// the last record removes the cluster's directory.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(filepath.Join(dir, "machines"))
	if err := s.ReserveCluster(Cluster{Name: "t1", Context: "t1", Subnet: "10.210.0.0/24", Driver: "local", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveCluster(Cluster{Name: "t1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second reserve of cluster t1: %v, want ErrExists", err)
	}
	h := &Host{Name: "m1", Cluster: "t1", Driver: "local", Role: RoleManager, AdminToken: "BERTHADM-secret",
		CACert: []byte("-----BEGIN CERTIFICATE-----"), Local: map[string]string{"netns": "berth-t1-m1"}}
	if err := s.Reserve(h); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve(&Host{Name: "m1", Cluster: "t1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second reserve of m1: %v, want ErrExists", err)
	}
	if err := s.Put(h); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "machines", "t1", "m1.json")
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("record mode: %v, %v; want 0600", st.Mode(), err)
	}
	if st, _ := os.Stat(filepath.Dir(p)); st.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, want 0700", st.Mode())
	}
	b, _ := os.ReadFile(p)
	for _, secret := range []string{"BERTHADM", "CERTIFICATE"} {
		if contains(b, secret) {
			t.Fatalf("record holds %s: %s", secret, b)
		}
	}
	got, err := s.Get("t1", "m1")
	if err != nil || got.Local["netns"] != "berth-t1-m1" || got.Role != RoleManager {
		t.Fatalf("get m1: %+v, %v", got, err)
	}
	if _, err := s.Get("t1", "a9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get a9: %v, want ErrNotFound", err)
	}
	if err := s.Put(&Host{Name: "a1", Cluster: "t1"}); err != nil {
		t.Fatal(err)
	}
	hs, err := s.List("t1")
	if err != nil || len(hs) != 2 || hs[0].Name != "a1" || hs[1].Name != "m1" {
		t.Fatalf("list: %v, %v; want a1, m1", hs, err)
	}
	cs, err := s.Clusters()
	if err != nil || len(cs) != 1 || cs[0].Subnet != "10.210.0.0/24" {
		t.Fatalf("clusters: %v, %v", cs, err)
	}
	for _, bad := range []string{"../x", "_cluster", ""} {
		if err := s.Put(&Host{Name: bad, Cluster: "t1"}); err == nil {
			t.Errorf("a host named %q was written", bad)
		}
	}
	for _, n := range []string{"a1", "m1", "m1"} { // deleting twice is no error
		if err := s.Delete("t1", n); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteCluster("t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "machines", "t1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cluster directory left: %v", err)
	}
}

func TestDefaultStoreDir(t *testing.T) {
	env := map[string]string{"HOME": "/home/u"}
	get := func(k string) string { return env[k] }
	if d, _ := DefaultStoreDir(get); d != "/home/u/.local/state/berth/machines" {
		t.Fatalf("dir = %s", d)
	}
	env["XDG_STATE_HOME"] = "/st"
	if d, _ := DefaultStoreDir(get); d != "/st/berth/machines" {
		t.Fatalf("dir = %s", d)
	}
	if _, err := DefaultStoreDir(func(string) string { return "" }); err == nil {
		t.Fatal("no HOME, no XDG_STATE_HOME: no error")
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
