package docker

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/driver"
)

// Events streams the status of this node's containers whenever one starts,
// dies, is OOM killed, changes health, is paused or unpaused, or is
// destroyed. The stream reconnects
// after engine errors (events in the gap are lost: the agent also polls
// List) and the channel closes when ctx is done.
func (d *Driver) Events(ctx context.Context) (<-chan *driver.Status, error) {
	out := make(chan *driver.Status, 64)
	go d.pumpEvents(ctx, out)
	return out, nil
}

func (d *Driver) pumpEvents(ctx context.Context, out chan<- *driver.Status) {
	defer close(out)
	since := time.Now()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := d.streamEvents(ctx, since, out, &since)
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("docker event stream broke; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// streamEvents forwards events until the stream fails; last tracks the time
// of the newest event so a reconnect resumes after it.
func (d *Driver) streamEvents(ctx context.Context, since time.Time, out chan<- *driver.Status, last *time.Time) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := d.filters().Add("type", string(events.ContainerEventType))
	res := d.cli.Events(ctx, client.EventsListOptions{
		Filters: f,
		Since:   strconv.FormatInt(since.Unix(), 10),
	})
	for {
		select {
		case err := <-res.Err:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return err
		case m := <-res.Messages:
			if m.TimeNano > 0 {
				*last = time.Unix(0, m.TimeNano)
			}
			st := d.eventStatus(ctx, m)
			if st == nil {
				continue
			}
			select {
			case out <- st:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// eventStatus returns the status an event reports, or nil for events the
// agent does not care about (create, attach, exec, ...).
func (d *Driver) eventStatus(ctx context.Context, m events.Message) *driver.Status {
	action := string(m.Action)
	if d.discarded.has(m.Actor.ID) {
		return nil
	}
	switch {
	case action == "destroy":
		d.statuses.forget(m.Actor.ID)
		return goneStatus(m)
	case action == "start" && d.selfStarts.take(m.Actor.ID):
		// Start inspects the container it started and returns that
		// status: inspecting it here again is one more engine call per
		// replica for no news.
		return nil
	case action == "die", action == "start", action == "oom", action == "pause", action == "unpause", strings.HasPrefix(action, "health_status"):
		st, err := d.inspect(ctx, m.Actor.ID)
		if errors.Is(err, driver.ErrNotFound) {
			return goneStatus(m)
		}
		if err != nil {
			d.log.Warn("inspect container after event", "container", m.Actor.ID, "event", action, "err", err)
			return nil
		}
		if st.State == driver.StateExited {
			// A task that exited by itself needs its secrets no more
			// than one that was stopped (see removeSecrets).
			if err := d.files.removeSecrets(st.TaskID); err != nil {
				d.log.Warn("remove the secret files of an exited task", "task", st.TaskID, "err", err)
			}
		}
		return st
	}
	return nil
}

// goneStatus reports a container that no longer exists, from the labels the
// engine copies into the event.
func goneStatus(m events.Message) *driver.Status {
	a := m.Actor.Attributes
	return &driver.Status{
		TaskID: a[LabelTask], App: a[LabelApp], Service: a[LabelService],
		ContainerID: m.Actor.ID, State: driver.StateExited,
		Error: "container removed",
	}
}
