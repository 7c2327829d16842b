package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// Start creates and starts the task's container, or adopts the one a
// previous agent made for the same task.
func (d *Driver) Start(ctx context.Context, cfg *driver.TaskConfig) (*driver.Status, error) {
	if cfg == nil || cfg.Task == nil || cfg.Service == nil {
		return nil, errors.New("start: a task and its service are required")
	}
	t := cfg.Task
	// No lookup first: the container's name is unique to the task, so a
	// create that conflicts means the task exists (a restarted agent, or a
	// concurrent Start) and is adopted. Listing containers per start would
	// cost the engine O(containers) each time.
	image, err := d.ensureImage(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", t.ID, err)
	}
	netIDs, err := d.ensurer.prepare(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", t.ID, err)
	}
	files, err := d.files.write(cfg)
	if err != nil {
		return nil, fmt.Errorf("start task %s: %w", t.ID, err)
	}
	id, err := d.create(ctx, cfg, image, netIDs, files)
	if id == "" && cerrdefs.IsNotFound(err) {
		// A network the cache knew was removed behind our back: find or
		// make the networks afresh, once.
		d.ensurer.forgetNetworks()
		if netIDs, err = d.ensurer.prepare(ctx, cfg); err == nil {
			id, err = d.create(ctx, cfg, image, netIDs, files)
		}
	}
	if cerrdefs.IsConflict(err) {
		// The task's container exists already: adopt it.
		if id, ferr := d.find(ctx, t.ID); ferr == nil {
			return d.adopt(ctx, id)
		}
	}
	if err != nil {
		// Nothing half-made stays: a container that was created but not
		// joined to its networks would otherwise sit as Created, and every
		// retry (a new task) would leave one more.
		if id != "" {
			d.discard(ctx, id)
		}
		if !cerrdefs.IsConflict(err) {
			_ = d.files.remove(t.ID) // no container holds them; Remove may never come
		}
		return nil, fmt.Errorf("start task %s: %w", t.ID, err)
	}
	d.selfStarts.add(id)
	if _, err := d.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		err = d.asPortTaken(ctx, cfg, err)
		d.discard(ctx, id)
		_ = d.files.remove(t.ID)
		return nil, fmt.Errorf("start task %s: %w", t.ID, err)
	}
	return d.inspect(ctx, id)
}

// discard removes a container of a task that failed to start. The task is
// reported failed; its container never ran, so there is nothing to keep.
func (d *Driver) discard(ctx context.Context, id string) {
	// The start's own context may be what ran out: removal gets its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	d.discarded.add(id)
	if _, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		d.log.Warn("remove the container of a task that did not start", "container", id, "err", err)
	}
}

// create makes the container and joins it to the service's other networks.
func (d *Driver) create(ctx context.Context, cfg *driver.TaskConfig, image string, netIDs map[string]string, files []fileMount) (string, error) {
	opts, err := createOptions(cfg, d.nodeID, image, netIDs, files)
	if err != nil {
		return "", err
	}
	res, err := d.cli.ContainerCreate(ctx, opts)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", opts.Name, err)
	}
	atts := cfg.Service.Networks
	for i := 1; i < len(atts); i++ {
		name := networkRef(cfg, atts[i].Name, netIDs)
		_, err := d.cli.NetworkConnect(ctx, name, client.NetworkConnectOptions{
			Container:      res.ID,
			EndpointConfig: endpoint(cfg, atts[i]),
		})
		if err != nil {
			return res.ID, fmt.Errorf("connect container %s to network %s: %w", opts.Name, name, err)
		}
	}
	return res.ID, nil
}

// adopt starts a container that is only created and returns its status.
func (d *Driver) adopt(ctx context.Context, id string) (*driver.Status, error) {
	st, err := d.inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	if st.State != driver.StateCreated {
		return st, nil
	}
	d.selfStarts.add(id)
	if _, err := d.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return nil, fmt.Errorf("start task %s: start container: %w", st.TaskID, err)
	}
	return d.inspect(ctx, id)
}

// Remove deletes the container, its anonymous volumes and its files.
func (d *Driver) Remove(ctx context.Context, taskID string) error {
	id, err := d.find(ctx, taskID)
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("remove task %s: %w", taskID, err)
	}
	if err == nil {
		_, err = d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove task %s: %w", taskID, err)
		}
		d.statuses.forget(id)
	}
	return d.files.remove(taskID)
}

// Inspect returns the task's status, or driver.ErrNotFound.
func (d *Driver) Inspect(ctx context.Context, taskID string) (*driver.Status, error) {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return nil, fmt.Errorf("inspect task %s: %w", taskID, err)
	}
	return d.inspect(ctx, id)
}

// List returns every container of this node, running or not. A container
// is inspected only when the listing shows it changed since its last
// inspection (see statusCache).
func (d *Driver) List(ctx context.Context) ([]*driver.Status, error) {
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: d.filters()})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	now := time.Now()
	out := make([]*driver.Status, 0, len(res.Items))
	listed := make(map[string]bool, len(res.Items))
	for _, c := range res.Items {
		listed[c.ID] = true
		if st, ok := d.statuses.get(c, now); ok {
			out = append(out, st)
			continue
		}
		if c.State == container.StateCreated {
			// Not started: the listing says all there is. An inspection
			// would wait for the container's lock, which the engine holds
			// while a start is in flight (seconds when starts queue up).
			out = append(out, createdStatus(c))
			continue
		}
		st, err := d.inspect(ctx, c.ID)
		if errors.Is(err, driver.ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	d.statuses.keepOnly(listed)
	return out, nil
}

// RemoveApp removes the app's networks, and its named volumes if asked.
func (d *Driver) RemoveApp(ctx context.Context, app string, volumes bool) error {
	stuck, err := d.ensurer.removeApp(ctx, app, volumes)
	if len(stuck) > 0 {
		d.log.Warn("the engine cannot remove these networks until dockerd restarts (Docker's endpoint-count leak, moby/moby#42119); they are left behind, and the app's next deploy makes its networks beside them",
			"app", app, "networks", stuck)
	}
	return err
}

// RemoveVolume removes the named volume berth made for app (see
// driver.VolumeRemover).
func (d *Driver) RemoveVolume(ctx context.Context, app, name string) error {
	return d.ensurer.removeVolume(ctx, app, name)
}

func (d *Driver) filters() client.Filters {
	return make(client.Filters).Add("label", LabelNode+"="+d.nodeID)
}

// find returns the ID of the task's container on this node: the one last
// inspected for it, else the one a label-filtered listing shows (which
// costs the engine O(containers): a stop of every replica would cost
// O(n^2)). A cached container removed behind the driver's back answers
// not found, as a listing would.
func (d *Driver) find(ctx context.Context, taskID string) (string, error) {
	if id, ok := d.statuses.containerOf(taskID); ok {
		return id, nil
	}
	f := d.filters().Add("label", LabelTask+"="+taskID)
	res, err := d.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return "", fmt.Errorf("list containers: %w", err)
	}
	if len(res.Items) == 0 {
		return "", driver.ErrNotFound
	}
	return res.Items[0].ID, nil
}

// inspect returns the container's status and keeps it for List.
func (d *Driver) inspect(ctx context.Context, id string) (*driver.Status, error) {
	at := time.Now()
	res, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		d.statuses.forget(id)
		return nil, driver.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("inspect container %s: %w", id, err)
	}
	st := statusOf(res.Container)
	d.statuses.put(res.Container, st, at)
	return st, nil
}
