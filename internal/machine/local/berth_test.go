package local

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/machine"
)

// TestBerthArgsGCGrace: a manager made with a registry GC grace runs with
// it, on its first start and on a restart (which has no spec); an agent and
// a manager without one get no such flag.
func TestBerthArgsGCGrace(t *testing.T) {
	d, err := New(Config{Root: t.TempDir(), Binary: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role  machine.Role
		grace time.Duration
		want  string
	}{
		{machine.RoleManager, 5 * time.Second, "--registry-gc-grace 5s"},
		{machine.RoleManager, 0, ""},
		{machine.RoleAgent, 5 * time.Second, ""},
	} {
		h := &machine.Host{Name: "h1", Cluster: "dev", Role: tc.role, Address: "10.0.0.2", Local: map[string]string{}}
		spec := machine.Spec{Name: "h1", Cluster: "dev", Role: tc.role, RegistryGCGrace: tc.grace,
			Join: machine.Join{Addr: "10.0.0.1:7702", Token: "t"}}
		remember(h, spec)
		for _, first := range []bool{true, false} {
			if !first {
				spec = machine.Spec{}
			}
			args := d.berthArgs(h, spec, first)
			i := slices.Index(args, "--registry-gc-grace")
			got := ""
			if i >= 0 && i+1 < len(args) {
				got = strings.Join(args[i:i+2], " ")
			}
			if got != tc.want {
				t.Errorf("%s with grace %s (first start %v): %q in %v, want %q", tc.role, tc.grace, first, got, args, tc.want)
			}
		}
	}
}
