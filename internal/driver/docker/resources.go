package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// resourceEnsurer creates the networks and volumes of apps on demand. Calls
// for one network name are serialized, in this process and (hostLocks)
// across processes on the host, so replicas started together create it
// once. Engines before API 1.44 accept two networks of the same name, so a
// race with a process elsewhere (a remote engine) is settled after the fact
// (see dedupNetwork).
type resourceEnsurer struct {
	cli   *client.Client
	locks keyedMutex // within this process
	host  hostLocks  // across processes on this host

	// known caches the IDs of networks this driver found or made, so that
	// starting many replicas does not serialise on the network lock and a
	// list call per task. removeApp and a create that finds a network gone
	// (forgetNetworks) clear it.
	mu    sync.Mutex
	known map[string]string
}

func newResourceEnsurer(cli *client.Client) *resourceEnsurer {
	return &resourceEnsurer{cli: cli, host: newHostLocks(), known: map[string]string{}}
}

func (r *resourceEnsurer) knownNetwork(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.known[name]
	return id, ok
}

func (r *resourceEnsurer) rememberNetwork(name, id string) {
	r.mu.Lock()
	r.known[name] = id
	r.mu.Unlock()
}

// forgetNetworks drops every cached network ID.
func (r *resourceEnsurer) forgetNetworks() {
	r.mu.Lock()
	r.known = map[string]string{}
	r.mu.Unlock()
}

// prepare makes every network and named volume the task needs, and returns
// the ID of each network by its Compose name. Containers join networks by
// ID: a name can briefly match two networks while a race is settled.
func (r *resourceEnsurer) prepare(ctx context.Context, cfg *driver.TaskConfig) (map[string]string, error) {
	app := cfg.Task.App
	ids := make(map[string]string, len(cfg.Service.Networks))
	for _, att := range cfg.Service.Networks {
		n := cfg.Networks[att.Name]
		name := networkName(app, n, att.Name)
		slice, onSlice := cfg.Slices[att.Name]
		if n != nil && n.External && !onSlice {
			res, err := r.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
			if err != nil {
				return nil, fmt.Errorf("external network %s: %w", name, err)
			}
			ids[att.Name] = res.Network.ID
			continue
		}
		var sp *driver.Slice
		if onSlice {
			sp = &slice
		}
		id, err := r.network(ctx, app, name, n, sp)
		if err != nil {
			return nil, err
		}
		ids[att.Name] = id
	}
	for _, m := range cfg.Service.Mounts {
		if m.Type != types.MountVolume || m.Source == "" {
			continue
		}
		v := cfg.Volumes[m.Source]
		if v != nil && v.External {
			continue // the engine reports a missing external volume at create
		}
		if err := r.volume(ctx, app, volumeName(app, v, m.Source), v); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// network returns the ID of the app's network name, creating it if needed:
// on slice s when it is given (a cluster network, see netslice.go).
func (r *resourceEnsurer) network(ctx context.Context, app, name string, n *types.Network, s *driver.Slice) (string, error) {
	key := name
	if s != nil {
		key += "@" + s.Subnet.String()
	}
	if id, ok := r.knownNetwork(key); ok {
		return id, nil
	}
	id, err := r.findOrCreateNetwork(ctx, app, name, n, s)
	if err == nil {
		r.rememberNetwork(key, id)
	}
	return id, err
}

func (r *resourceEnsurer) findOrCreateNetwork(ctx context.Context, app, name string, n *types.Network, s *driver.Slice) (string, error) {
	defer r.locks.lock("network/" + name)()
	unlock, err := r.host.lock(ctx, "network-"+name)
	if err != nil {
		return "", err
	}
	defer unlock()
	var names []string
	if s != nil {
		names = append(names, slicedName(name, s.Subnet)) // a stuck network's successor
	}
	found, err := r.networksNamed(ctx, name, names...)
	if err != nil {
		return "", err
	}
	external := n != nil && n.External
	found, id, ok, err := foreignNetwork(app, name, external, found)
	if ok || err != nil {
		return id, err
	}
	create := name
	if s != nil && len(found) > 0 {
		var stuck bool
		if found, stuck, err = r.dropOffSlice(ctx, app, name, found, *s); err != nil {
			return "", err
		}
		if stuck {
			create = slicedName(name, s.Subnet)
		}
	}
	if len(found) > 0 {
		return oldest(found).ID, nil
	}
	opts := client.NetworkCreateOptions{Driver: "bridge", Labels: appLabels(app, nil)}
	if n != nil {
		opts.Labels = appLabels(app, n.Labels)
		opts.Internal = n.Internal
		if n.Driver != "" {
			opts.Driver = n.Driver
		}
		if n.External {
			// A cluster network shared by apps: no app's `down` removes it.
			opts.Labels = clusterNetworkLabels(name, n.Labels)
		}
	}
	if s != nil {
		withSlice(&opts, create, *s)
	}
	res, err := r.cli.NetworkCreate(ctx, create, opts)
	if err != nil && !cerrdefs.IsConflict(err) {
		if s != nil {
			return "", r.sliceTaken(ctx, create, *s, err)
		}
		return "", fmt.Errorf("create network %s: %w", create, err)
	}
	return r.dedupNetwork(ctx, create, res.ID)
}

// dedupNetwork keeps one network of a name when another process created it
// at the same moment: every creator keeps the oldest, removes its own, and
// returns the survivor's ID.
func (r *resourceEnsurer) dedupNetwork(ctx context.Context, name, ours string) (string, error) {
	found, err := r.networksNamed(ctx, name)
	if err != nil {
		return "", err
	}
	if len(found) == 0 {
		return "", fmt.Errorf("network %s vanished right after it was created", name)
	}
	keep := oldest(found)
	if ours == "" || keep.ID == ours {
		return keep.ID, nil
	}
	if _, err := r.cli.NetworkRemove(ctx, ours, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("remove duplicate network %s: %w", name, err)
	}
	return keep.ID, nil
}

// oldest is the network every creator agrees to keep.
func oldest(ns []network.Summary) network.Summary {
	return slices.MinFunc(ns, func(a, b network.Summary) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
}

// networksNamed lists networks whose name is exactly name or one of also
// (the engine's name filter matches substrings: those start with name).
func (r *resourceEnsurer) networksNamed(ctx context.Context, name string, also ...string) ([]network.Summary, error) {
	res, err := r.cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", name)})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []network.Summary
	for _, n := range res.Items {
		if n.Name == name || slices.Contains(also, n.Name) {
			out = append(out, n)
		}
	}
	return out, nil
}

// foreignNetwork settles the networks of name found on the engine that
// berth did not make (see madeByBerth): the app's own network never joins
// one, it fails naming the owner; an external network uses one as it is
// (ok), as Compose does. Otherwise it returns berth's own networks of
// found, the only ones the caller may reuse or remove.
func foreignNetwork(app, name string, external bool, found []network.Summary) (ours []network.Summary, id string, ok bool, err error) {
	var foreign []network.Summary
	for _, n := range found {
		if madeByBerth(n.Labels, app, name) {
			ours = append(ours, n)
		} else {
			foreign = append(foreign, n)
		}
	}
	switch {
	case len(foreign) == 0 || len(ours) > 0:
		return ours, "", false, nil // a foreign twin beside berth's own is left alone
	case external:
		return nil, oldest(foreign).ID, true, nil
	}
	return nil, "", false, fmt.Errorf("network %s on this node exists and was made by %s: berth never joins a network it did not make; remove it (docker network rm %s), or declare it external in the Compose file to use it as it is",
		name, ownerOf(oldest(foreign).Labels), name)
}

func (r *resourceEnsurer) volume(ctx context.Context, app, name string, v *types.Volume) error {
	defer r.locks.lock("volume/" + name)()
	res, err := r.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	switch {
	case err == nil && !madeByBerth(res.Volume.Labels, app, ""):
		return fmt.Errorf("volume %s on this node exists and was made by %s: berth never reuses a volume it did not make; remove it (docker volume rm %s) if its data is not needed, or declare it external in the Compose file to use it as it is",
			name, ownerOf(res.Volume.Labels), name)
	case err == nil:
		return nil
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	opts := client.VolumeCreateOptions{Name: name, Labels: appLabels(app, nil)}
	if v != nil {
		opts.Driver, opts.DriverOpts, opts.Labels = v.Driver, v.DriverOpts, appLabels(app, v.Labels)
	}
	// Creating an existing volume with the same driver is a no-op.
	if _, err := r.cli.VolumeCreate(ctx, opts); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// removeVolume deletes the app's volume name; one that is gone, or that
// berth did not make for app, is left (the engine refuses one a container
// still uses: the caller retries).
func (r *resourceEnsurer) removeVolume(ctx context.Context, app, name string) error {
	defer r.locks.lock("volume/" + name)()
	res, err := r.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("inspect volume %s: %w", name, err)
	case !madeByBerth(res.Volume.Labels, app, ""):
		return nil
	}
	if _, err := r.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove volume %s of app %s: %w", name, app, err)
	}
	return nil
}

// removeApp deletes the app's networks and, with volumes, its named volumes.
// Only what carries the app's label goes: external resources never do. It
// returns the networks the engine cannot remove (see removeNetwork), which
// stay behind.
func (r *resourceEnsurer) removeApp(ctx context.Context, app string, volumes bool) (stuck []string, err error) {
	r.forgetNetworks()
	f := make(client.Filters).Add("label", LabelApp+"="+app)
	nets, err := r.cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks of app %s: %w", app, err)
	}
	for _, n := range nets.Items {
		unlock := r.locks.lock("network/" + n.Name)
		leaked, err := r.removeNetwork(ctx, n.ID)
		unlock()
		if leaked {
			stuck = append(stuck, n.Name)
			continue
		}
		if err != nil {
			return stuck, fmt.Errorf("remove network %s of app %s: %w", n.Name, app, err)
		}
	}
	if !volumes {
		return stuck, nil
	}
	vols, err := r.cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return stuck, fmt.Errorf("list volumes of app %s: %w", app, err)
	}
	for _, v := range vols.Items {
		if _, err := r.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return stuck, fmt.Errorf("remove volume %s of app %s: %w", v.Name, app, err)
		}
	}
	return stuck, nil
}

// removeNetwork removes a network that no task of berth's uses any more.
// Docker 20.10 can keep an endpoint of a container that is gone (moby
// issues 17217 and 23302), which a forced disconnect drops, after which
// the removal is tried once more. It can also leak a network's endpoint
// count (moby/moby#42119): no endpoint is left to disconnect, yet the
// engine refuses the removal until dockerd restarts. Such a network is
// reported leaked: retrying cannot help. An endpoint of a container that
// still exists is left alone: that is someone's, and the error says so.
func (r *resourceEnsurer) removeNetwork(ctx context.Context, id string) (leaked bool, err error) {
	_, err = r.cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
	if err == nil || cerrdefs.IsNotFound(err) {
		return false, nil
	}
	dropped, left, derr := r.dropStaleEndpoints(ctx, id)
	if derr != nil {
		return false, errors.Join(err, derr)
	}
	if dropped > 0 {
		if _, err = r.cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{}); err == nil || cerrdefs.IsNotFound(err) {
			return false, nil
		}
	}
	return left == 0 && endpointsLeaked(err), err
}

// dropStaleEndpoints force-disconnects from network id every endpoint whose
// container the engine no longer has, and says how many went and how many
// (of containers that exist) are left.
func (r *resourceEnsurer) dropStaleEndpoints(ctx context.Context, id string) (dropped, left int, err error) {
	res, err := r.cli.NetworkInspect(ctx, id, client.NetworkInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("inspect network %s: %w", id, err)
	}
	for cid, ep := range res.Network.Containers {
		if _, err := r.cli.ContainerInspect(ctx, cid, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
			left++ // it exists (or the engine could not say): not stale
			continue
		}
		// The engine finds a stale endpoint by the container's name as
		// well as its ID; the ID is tried first.
		for _, c := range []string{cid, ep.Name} {
			if c == "" {
				continue
			}
			if _, err := r.cli.NetworkDisconnect(ctx, id, client.NetworkDisconnectOptions{Container: c, Force: true}); err == nil {
				dropped++
				break
			}
		}
	}
	return dropped, left, nil
}
