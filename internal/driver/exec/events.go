package execdriver

import (
	"context"

	"github.com/berth-dev/berth/internal/driver"
)

// Events delivers the status of a task whenever it exits or its health
// changes, until ctx is done; then the channel closes. A subscriber that
// falls 64 statuses behind misses the newest (the agent also polls List).
func (d *Driver) Events(ctx context.Context) (<-chan *driver.Status, error) {
	ch := make(chan *driver.Status, 64)
	d.mu.Lock()
	d.subs[ch] = struct{}{}
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case <-ctx.Done():
		case <-d.ctx.Done():
		}
		d.mu.Lock()
		delete(d.subs, ch)
		close(ch)
		d.mu.Unlock()
	}()
	return ch, nil
}

// publish sends st to every subscriber without blocking.
func (d *Driver) publish(st *driver.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for ch := range d.subs {
		select {
		case ch <- st:
		default:
			d.log.Warn("event subscriber is behind; dropping a status", "task", st.TaskID)
		}
	}
}
