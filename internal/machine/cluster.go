package machine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// ClusterSpec is a cluster of hosts to make with one driver.
type ClusterSpec struct {
	Name     string
	Managers int // 1, 3 or 5
	Agents   int
	Images   []string
	Labels   map[string]string // on every host
	Options  map[string]string // the driver's own, for every host
	// RegistryGCGrace is the managers' --registry-gc-grace (0: theirs).
	RegistryGCGrace time.Duration
}

// Limits of a cluster of hosts on one machine.
const MaxClusterAgents = 50

// CheckClusterSpec says what is wrong with spec, as a user would fix it.
func CheckClusterSpec(spec ClusterSpec) error {
	switch spec.Managers {
	case 1, 3, 5:
	default:
		return fmt.Errorf("--managers %d: a cluster has 1, 3 or 5 managers (an odd number keeps a majority when one fails)", spec.Managers)
	}
	if spec.Agents < 0 || spec.Agents > MaxClusterAgents {
		return fmt.Errorf("--agents %d: give 0 to %d agents", spec.Agents, MaxClusterAgents)
	}
	for _, img := range spec.Images {
		if img == "" {
			return errors.New("--image: an image reference cannot be empty")
		}
	}
	return nil
}

// HostNames are the names of a cluster's hosts, managers first: m1..mM,
// a1..aN.
func HostNames(managers, agents int) []string {
	var out []string
	for i := 1; i <= managers; i++ {
		out = append(out, "m"+strconv.Itoa(i))
	}
	for i := 1; i <= agents; i++ {
		out = append(out, "a"+strconv.Itoa(i))
	}
	return out
}

// CheckJoiner checks the spec of a host that will join a cluster before
// its join address and token are known (they come from a manager, asked
// only once the input is known good): a stand-in join takes their place.
func CheckJoiner(d Driver, spec Spec) error {
	if spec.Join.Addr == "" {
		spec.Join = Join{Addr: "manager.invalid:7702", Token: "stand-in-token"}
	}
	return d.Check(spec)
}

// Tokens are the join tokens of a cluster.
type Tokens struct{ Worker, Manager string }

// ClusterMaker makes a cluster of hosts with one driver.
type ClusterMaker struct {
	Driver Driver
	Store  *Store
	// Tokens asks the first manager, just made, for the join tokens (the
	// CLI asks its API with Host.AdminToken and Host.CACert).
	Tokens func(ctx context.Context, first *Host) (Tokens, error)
	// Progress is told each step of each host; may be nil.
	Progress Progress
}

// ClusterResult is a made cluster.
type ClusterResult struct {
	Hosts      []*Host // managers first, in HostNames order
	AdminToken string
	CACert     []byte
}

// Create makes the first manager (which bootstraps), asks it for the join
// tokens, then makes the other managers and the agents in parallel. Each
// host's record is stored as soon as it is made, so a crash leaves what
// `cluster rm` needs. On failure it removes every host it made (and their
// records) and returns the first error, which names the host and the step.
func (m *ClusterMaker) Create(ctx context.Context, spec ClusterSpec) (res *ClusterResult, err error) {
	if err := CheckClusterSpec(spec); err != nil {
		return nil, err
	}
	names := HostNames(spec.Managers, spec.Agents)
	specs := make([]Spec, len(names))
	for i, n := range names {
		specs[i] = Spec{Name: n, Cluster: spec.Name, Role: RoleAgent, Labels: spec.Labels, Options: spec.Options}
		if i < spec.Managers {
			specs[i].Role = RoleManager
			specs[i].RegistryGCGrace = spec.RegistryGCGrace
		} else {
			specs[i].Images = spec.Images
		}
		check := m.Driver.Check
		if i > 0 {
			check = func(s Spec) error { return CheckJoiner(m.Driver, s) }
		}
		if err := check(specs[i]); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
	}
	made := make([]*Host, len(names))
	defer func() {
		if err != nil {
			m.undo(spec.Name, names, made)
		}
	}()
	first, err := m.createOne(ctx, specs[0])
	made[0] = first
	if err != nil {
		return nil, err
	}
	toks, err := m.Tokens(ctx, first)
	if err != nil {
		return nil, fmt.Errorf("%s: get the join tokens: %w", first.Name, err)
	}
	join := net.JoinHostPort(first.Address, strconv.Itoa(ClusterPort))
	// The first failure cancels the hosts still being made: the cluster
	// is undone anyway, and their "context canceled" would hide the cause.
	rest, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := 1; i < len(names); i++ {
		specs[i].Join = Join{Addr: join, Token: toks.Worker}
		if specs[i].Role == RoleManager {
			specs[i].Join.Token = toks.Manager
		}
		wg.Go(func() {
			h, err := m.createOne(rest, specs[i])
			mu.Lock()
			defer mu.Unlock()
			made[i] = h
			if err != nil && firstErr == nil {
				firstErr = err
				cancel()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return &ClusterResult{Hosts: made, AdminToken: first.AdminToken, CACert: first.CACert}, nil
}

// createOne reserves the host's name in the store, makes the host and
// stores its record. On failure the driver has undone its part; the
// reservation is dropped here.
func (m *ClusterMaker) createOne(ctx context.Context, spec Spec) (*Host, error) {
	rsv := &Host{Name: spec.Name, Cluster: spec.Cluster, Driver: m.Driver.Name(), Role: spec.Role, Labels: spec.Labels}
	if err := m.Store.Reserve(rsv); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	h, err := m.Driver.Create(ctx, spec, m.Progress)
	if err != nil {
		_ = m.Store.Delete(spec.Cluster, spec.Name)
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	if err := m.Store.Put(h); err != nil {
		return h, fmt.Errorf("%s: %w", spec.Name, err)
	}
	return h, nil
}

// undo removes the hosts made (in parallel) and their records. It runs
// on a context of its own: the caller's may be what was cancelled.
func (m *ClusterMaker) undo(cluster string, names []string, made []*Host) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i, h := range made {
		if h == nil {
			continue
		}
		wg.Go(func() {
			if m.Progress != nil {
				m.Progress(names[i], "remove (undo)")
			}
			if err := m.Driver.Remove(ctx, h, true); err == nil {
				_ = m.Store.Delete(cluster, names[i])
			}
		})
	}
	wg.Wait()
}

// RemoveAll tears down every host of a cluster recorded in the store,
// in parallel and forcefully, deleting each record once its host is gone.
// It needs no cluster: the records are the driver's own. It returns the
// hosts that failed, joined.
func RemoveAll(ctx context.Context, drivers func(name string) (Driver, error), store *Store, cluster string, progress Progress) error {
	hosts, err := store.List(cluster)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		wg.Go(func() {
			d, err := drivers(h.Driver)
			if err == nil {
				if progress != nil {
					progress(h.Name, "remove")
				}
				err = d.Remove(ctx, h, true)
				if err != nil && !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
					// A part can vanish while it is removed (a veth goes
					// with its namespace); the second pass finds it gone.
					err = d.Remove(ctx, h, true)
				}
				if errors.Is(err, ErrNotFound) {
					err = nil // a name reserved, never made: nothing to remove
				}
			}
			if err == nil {
				err = store.Delete(cluster, h.Name)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
