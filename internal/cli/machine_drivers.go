package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/machine"
	"github.com/berth-dev/berth/internal/machine/local"
	"github.com/berth-dev/berth/internal/machine/ssh"
	"github.com/berth-dev/berth/internal/types"
)

// machineDrivers makes the driver --driver names. The drivers built into
// berth register themselves in driverMakers; tests replace this.
var machineDrivers = func(e *env, name string) (machine.Driver, error) {
	mk := driverMakers[name]
	if mk == nil {
		return nil, fmt.Errorf("unknown driver %q: berth has %s", name, strings.Join(driverNames(), ", "))
	}
	return mk(e)
}

// driverMakers are the drivers built into berth, by name.
var driverMakers = map[string]func(e *env) (machine.Driver, error){
	"local": func(e *env) (machine.Driver, error) {
		store, err := e.machineStore()
		if err != nil {
			return nil, err
		}
		return local.New(local.Config{Root: hostsRoot(store)})
	},
	"ssh": func(e *env) (machine.Driver, error) {
		return ssh.New(ssh.Config{Getenv: e.getenv}), nil
	},
}

// reservations build, per driver, the record kept while a host is being
// made: enough for `machine rm -f` to clear what a Create cut short (the
// CLI killed) left. A driver without one gets a bare record.
var reservations = map[string]func(machine.Spec) (*machine.Host, error){
	"ssh": ssh.HostFor,
}

func driverNames() []string {
	var out []string
	for n := range driverMakers {
		out = append(out, n)
	}
	slices.Sort(out)
	if out == nil {
		return []string{"no driver in this build"}
	}
	return out
}

// machineStore is where this machine keeps its hosts' driver records.
func (e *env) machineStore() (*machine.Store, error) {
	dir, err := machine.DefaultStoreDir(e.getenv)
	if err != nil {
		return nil, err
	}
	return machine.NewStore(dir), nil
}

// hostsRoot is where the local driver keeps its hosts' directories: next
// to the records, not among them.
func hostsRoot(store *machine.Store) string {
	return filepath.Join(filepath.Dir(store.Dir()), "hosts")
}

// parseMachineLabels reads --label KEY=VALUE flags.
func parseMachineLabels(flags []string) (map[string]string, error) {
	if len(flags) > types.MaxMachineLabels {
		return nil, fmt.Errorf("--label: at most %d labels, not %d", types.MaxMachineLabels, len(flags))
	}
	out := map[string]string{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want KEY=VALUE, e.g. --label zone=a", f)
		}
		if err := types.CheckMachineLabel(k, v); err != nil {
			return nil, fmt.Errorf("--label %q: %w", f, err)
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// stepPrinter prints each step of each host as it starts, with the time
// since start: "m2: start engine (1.2s)". Hosts are made in parallel, so
// it locks.
func stepPrinter(w io.Writer, start time.Time) machine.Progress {
	var mu sync.Mutex
	return func(host, step string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s: %s (%.1fs)\n", host, step, time.Since(start).Seconds())
	}
}
