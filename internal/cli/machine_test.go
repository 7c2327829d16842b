package cli

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/machine"
)

// removeDriver is a machine.Driver that only records what it removes, for
// the CLI's unit tests (the end-to-end test in test/hosts uses the real
// local driver).
type removeDriver struct {
	machine.Driver // every other method panics: these tests must not reach them
	mu             sync.Mutex
	removed        []string
}

func (d *removeDriver) Name() string { return "local" }
func (d *removeDriver) Remove(_ context.Context, h *machine.Host, force bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removed = append(d.removed, h.Name)
	return nil
}

func useDrivers(t *testing.T, d machine.Driver) {
	old := machineDrivers
	machineDrivers = func(_ *env, name string) (machine.Driver, error) {
		if name != "local" {
			return old(nil, name)
		}
		return d, nil
	}
	t.Cleanup(func() { machineDrivers = old })
}

// TestMachineInputErrors: bad input is one clear line and exit code 1,
// before anything is made or any manager asked.
func TestMachineInputErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"two managers", []string{"cluster", "create", "t1", "--managers", "2"}, "--managers 2: a cluster has 1, 3 or 5 managers"},
		{"negative agents", []string{"cluster", "create", "t1", "--agents", "-1"}, "--agents -1"},
		{"cluster name", []string{"cluster", "create", "T_1"}, `cluster name "T_1" is not a DNS label`},
		{"cluster label", []string{"cluster", "create", "t1", "--label", "zone"}, `--label "zone": want KEY=VALUE`},
		{"machine name", []string{"machine", "create", "a.1"}, `machine name "a.1" is not a DNS label`},
		{"machine label", []string{"machine", "create", "a1", "--label", "-x=1"}, `--label "-x=1": label key "-x" is invalid`},
		{"role", []string{"machine", "create", "a1", "--role", "boss"}, `--role "boss": want agent or manager`},
		{"unknown driver", []string{"machine", "create", "a1", "--driver", "cloud"}, `--driver: unknown driver "cloud"`},
		{"ssh flag without ssh", []string{"machine", "create", "a1", "--ssh-addr", "192.0.2.1"}, "--ssh-addr is a flag of the ssh driver"},
		{"rm unknown", []string{"cluster", "rm", "nope"}, "no cluster named nope was made on this machine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			useDrivers(t, &removeDriver{})
			if code := h.run(t, tc.args...); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			got := h.errOut.String()
			if !strings.HasPrefix(got, "error: ") || strings.Count(got, "\n") != 1 || !strings.Contains(got, tc.want) {
				t.Fatalf("stderr %q, want one line with %q", got, tc.want)
			}
		})
	}
}

// TestClusterNameInUse: a cluster recorded here, or a context of its
// name, refuses create before any host is made.
func TestClusterNameInUse(t *testing.T) {
	h := newHarness(t)
	d := &removeDriver{}
	useDrivers(t, d)
	store, _ := h.e.machineStore()
	if err := store.ReserveCluster(machine.Cluster{Name: "t1"}); err != nil {
		t.Fatal(err)
	}
	if code := h.run(t, "cluster", "create", "t1"); code != 1 || !strings.Contains(h.errOut.String(), "a cluster named t1 was made on this machine") {
		t.Fatalf("exit %d, stderr %q", code, h.errOut.String())
	}
	h = newHarness(t)
	useDrivers(t, d)
	if code := h.run(t, "context", "create", "t2", "--addr", "http://127.0.0.1:1"); code != 0 {
		t.Fatal(h.errOut.String())
	}
	if code := h.run(t, "cluster", "create", "t2"); code != 1 || !strings.Contains(h.errOut.String(), "a context named t2 exists") {
		t.Fatalf("exit %d, stderr %q", code, h.errOut.String())
	}
}

// TestClusterRmWithoutCluster: `cluster rm` removes every host recorded
// here through its driver, the context and the records, asking no manager
// (the context's address answers nothing).
func TestClusterRmWithoutCluster(t *testing.T) {
	h := newHarness(t)
	d := &removeDriver{}
	useDrivers(t, d)
	if code := h.run(t, "context", "create", "t1", "--addr", "http://127.0.0.1:1"); code != 0 {
		t.Fatal(h.errOut.String())
	}
	if code := h.run(t, "context", "use", "t1"); code != 0 {
		t.Fatal(h.errOut.String())
	}
	store, _ := h.e.machineStore()
	if err := store.ReserveCluster(machine.Cluster{Name: "t1", Context: "t1", Driver: "local"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"m1", "a1", "a2"} {
		if err := store.Put(&machine.Host{Name: n, Cluster: "t1", Driver: "local", Local: map[string]string{"x": n}}); err != nil {
			t.Fatal(err)
		}
	}
	if code := h.run(t, "cluster", "ls"); code != 0 || !strings.Contains(h.out.String(), "t1") {
		t.Fatalf("cluster ls: %d %q %q", code, h.out.String(), h.errOut.String())
	}
	if code := h.run(t, "cluster", "rm", "t1"); code != 0 {
		t.Fatalf("cluster rm: %s", h.errOut.String())
	}
	slices.Sort(d.removed)
	if !slices.Equal(d.removed, []string{"a1", "a2", "m1"}) {
		t.Fatalf("removed %v", d.removed)
	}
	cs, _ := h.e.contextStore()
	f, _ := cs.load()
	if f.Contexts["t1"] != nil || f.Current != "" {
		t.Fatalf("context t1 left: %+v", f)
	}
	if _, err := filepath.Glob(filepath.Join(store.Dir(), "t1", "*")); err != nil {
		t.Fatal(err)
	}
	if got, _ := filepath.Glob(filepath.Join(store.Dir(), "t1")); len(got) != 0 {
		t.Fatalf("records left: %v", got)
	}
}

// execDriver runs nothing: Exec returns the code it is given, so the
// test sees berth's exit code follow it.
type execDriver struct {
	removeDriver
	code int
	argv []string
}

func (d *execDriver) Exec(_ context.Context, _ *machine.Host, cmd []string, _ machine.Stdio) (int, error) {
	d.argv = cmd
	return d.code, nil
}

// TestMachineSSHExitCode: the command's exit code is berth's, with
// nothing printed; the default command is a shell.
func TestMachineSSHExitCode(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		wantArgv []string
	}{
		{[]string{"machine", "ssh", "a1", "--", "sh", "-c", "exit 7"}, 7, []string{"sh", "-c", "exit 7"}},
		{[]string{"machine", "ssh", "a1"}, 0, []string{"/bin/sh"}},
	} {
		h := newHarness(t)
		d := &execDriver{code: tc.code}
		useDrivers(t, d)
		store, _ := h.e.machineStore()
		if err := store.Put(&machine.Host{Name: "a1", Cluster: "default", Driver: "local"}); err != nil {
			t.Fatal(err)
		}
		if code := h.run(t, tc.args...); code != tc.code || h.errOut.String() != "" {
			t.Fatalf("%v: exit %d, stderr %q; want %d and nothing printed", tc.args, code, h.errOut.String(), tc.code)
		}
		if !slices.Equal(d.argv, tc.wantArgv) {
			t.Fatalf("%v ran %v, want %v", tc.args, d.argv, tc.wantArgv)
		}
	}
	h := newHarness(t)
	useDrivers(t, &execDriver{})
	if code := h.run(t, "machine", "ssh", "zz"); code != 1 || !strings.Contains(h.errOut.String(), "this machine has no host zz in cluster default") {
		t.Fatalf("unknown host: exit %d, %q", code, h.errOut.String())
	}
}
