package local

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/machine"
)

func TestCheck(t *testing.T) {
	d, err := New(Config{Root: t.TempDir(), Binary: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	join := machine.Join{Addr: "10.0.0.1:7702", Token: "BERTH-1-x-w-y"}
	ok := machine.Spec{Name: "a1", Cluster: "dev", Role: machine.RoleAgent, Join: join}
	if err := d.Check(ok); err != nil {
		t.Fatalf("a good spec: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(d.cfg.Root, "dev", "taken"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*machine.Spec)
		want string
	}{
		{"bad name", func(s *machine.Spec) { s.Name = "A_1" }, "invalid host name"},
		{"long name", func(s *machine.Spec) { s.Name = strings.Repeat("a", 33) }, "invalid host name"},
		{"bad cluster", func(s *machine.Spec) { s.Cluster = "-x" }, "invalid cluster name"},
		{"bad role", func(s *machine.Spec) { s.Role = "boss" }, "invalid role"},
		{"unknown option", func(s *machine.Spec) { s.Options = map[string]string{"addr": "x"} }, `no option "addr"`},
		{"bad subnet", func(s *machine.Spec) { s.Options = map[string]string{OptSubnet: "10.0.0.0/8"} }, "invalid subnet"},
		{"ipv6 subnet", func(s *machine.Spec) { s.Options = map[string]string{OptSubnet: "fd00::/64"} }, "invalid subnet"},
		{"bad label", func(s *machine.Spec) { s.Labels = map[string]string{"": "v"} }, "invalid label"},
		{"token without address", func(s *machine.Spec) { s.Join.Addr = "" }, "both a manager's address and a token"},
		{"agent without manager", func(s *machine.Spec) { s.Join = machine.Join{} }, "needs a manager to join"},
		{"name in use", func(s *machine.Spec) { s.Name = "taken" }, "exists"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.edit(&s)
			err := d.Check(s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Check: %v, want an error with %q", err, c.want)
			}
			if c.name == "name in use" && !errors.Is(err, machine.ErrExists) {
				t.Errorf("%v does not wrap ErrExists", err)
			}
		})
	}
	deep, _ := New(Config{Root: "/" + strings.Repeat("d", 90), Binary: "/bin/true"})
	if err := deep.Check(ok); err == nil || !strings.Contains(err.Error(), "too deep") {
		t.Errorf("a root too deep for unix sockets: %v", err)
	}
	if _, err := New(Config{Root: "relative"}); err == nil {
		t.Error("New took a relative root")
	}
}

func TestResolversAndPools(t *testing.T) {
	dir := t.TempDir()
	rc := filepath.Join(dir, "resolv.conf")
	os.WriteFile(rc, []byte("# x\nnameserver 10.255.255.53\nnameserver ::1\nsearch lan\n"), 0o600)
	if got := resolvers(rc); len(got) != 1 || got[0] != netip.MustParseAddr("10.255.255.53") {
		t.Errorf("resolvers: %v", got)
	}
	dj := filepath.Join(dir, "daemon.json")
	os.WriteFile(dj, []byte(`{"bip":"10.99.0.1/24","default-address-pools":[{"base":"10.200.0.0/16","size":24}]}`), 0o600)
	if got := daemonPools(dj); strings.Join(got, " ") != "10.99.0.1/24 10.200.0.0/16" {
		t.Errorf("daemon pools: %v", got)
	}
}

// The default subnet overlaps nothing the machine uses, and a chosen one
// that overlaps a route is refused naming it.
func TestPickSubnet(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/ip"); err != nil {
		if _, err := os.Stat("/sbin/ip"); err != nil {
			t.Skip("needs iproute2's ip")
		}
	}
	d, _ := New(Config{Root: t.TempDir(), Binary: "/bin/true"})
	p, err := d.pickSubnet("")
	if err != nil {
		t.Fatal(err)
	}
	taken, err := takenPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range taken {
		if tk.p.Overlaps(p) {
			t.Errorf("default %s overlaps %s (%s)", p, tk.p, tk.what)
		}
	}
	if _, err := d.pickSubnet("172.17.5.0/24"); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("a subnet in Docker's pools: %v", err)
	}
}
