package docker

import (
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/driver"
)

// statusMaxAge bounds how long List trusts a container's last inspection
// while the listing shows the same state: a change no listing shows (a
// container restarted behind the agent's back, its event missed) is seen
// within this time.
const statusMaxAge = time.Minute

// statusCache keeps the newest inspection of each container, so that List
// inspects only the containers whose state or health changed since. An
// inspection per container per listing costs the engine O(containers)
// every poll: with 100 replicas, polls took 0.5 s on average (up to 2 s),
// on the agent's loop, while a deploy waited.
type statusCache struct {
	mu sync.Mutex
	m  map[string]cachedStatus
}

type cachedStatus struct {
	st     driver.Status
	state  container.ContainerState
	health container.HealthStatus
	at     time.Time // when the inspection began
}

// put records an inspection that began at at, unless a newer one is
// recorded already (inspections run concurrently: events, starts, lists).
func (c *statusCache) put(ci container.InspectResponse, st *driver.Status, at time.Time) {
	if ci.State == nil {
		return
	}
	health := container.NoHealthcheck
	if ci.State.Health != nil {
		health = ci.State.Health.Status
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedStatus{}
	}
	if old, ok := c.m[ci.ID]; ok && old.at.After(at) {
		return
	}
	c.m[ci.ID] = cachedStatus{st: *st, state: ci.State.Status, health: health, at: at}
}

// get returns a copy of the container's status if the listing's summary
// shows what its last inspection showed and that inspection is recent. An
// unhealthy container is always inspected again: its probe output changes
// without an event.
func (c *statusCache) get(s container.Summary, now time.Time) (*driver.Status, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[s.ID]
	if !ok || e.state != s.State || e.health != summaryHealth(s) || e.health == container.Unhealthy ||
		now.Sub(e.at) > statusMaxAge {
		return nil, false
	}
	st := e.st
	return &st, true
}

// containerOf returns the container last inspected for the task, newest
// first if there were several.
func (c *statusCache) containerOf(taskID string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var id string
	var at time.Time
	for cid, e := range c.m {
		if e.st.TaskID == taskID && (id == "" || e.at.After(at)) {
			id, at = cid, e.at
		}
	}
	return id, id != ""
}

func (c *statusCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// keepOnly drops the containers a listing no longer shows.
func (c *statusCache) keepOnly(ids map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m {
		if !ids[id] {
			delete(c.m, id)
		}
	}
}

// summaryHealth is the health a listing shows: its Health field where the
// engine sends one (API 1.52 on), else the Status text, which the engine
// ends with "(healthy)", "(unhealthy)" or "(health: starting)".
func summaryHealth(s container.Summary) container.HealthStatus {
	if s.Health != nil {
		return s.Health.Status
	}
	switch {
	case strings.HasSuffix(s.Status, "(healthy)"):
		return container.Healthy
	case strings.HasSuffix(s.Status, "(unhealthy)"):
		return container.Unhealthy
	case strings.HasSuffix(s.Status, "(health: starting)"):
		return container.Starting
	}
	return container.NoHealthcheck
}
