package docker

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/driver"
)

func TestStatusCacheGet(t *testing.T) {
	now := time.Now()
	inspected := func(state container.ContainerState, health container.HealthStatus) container.InspectResponse {
		s := &container.State{Status: state}
		if health != "" {
			s.Health = &container.Health{Status: health}
		}
		return container.InspectResponse{ID: "c1", State: s}
	}
	for _, tc := range []struct {
		name    string
		cached  container.InspectResponse
		age     time.Duration
		summary container.Summary
		hit     bool
	}{
		{"same state", inspected(container.StateRunning, ""), time.Second,
			container.Summary{ID: "c1", State: container.StateRunning, Status: "Up 5 seconds"}, true},
		{"state changed", inspected(container.StateRunning, ""), time.Second,
			container.Summary{ID: "c1", State: container.StateExited, Status: "Exited (1) 1 second ago"}, false},
		{"healthy in the status text", inspected(container.StateRunning, container.Healthy), time.Second,
			container.Summary{ID: "c1", State: container.StateRunning, Status: "Up 5 seconds (healthy)"}, true},
		{"health changed", inspected(container.StateRunning, container.Starting), time.Second,
			container.Summary{ID: "c1", State: container.StateRunning, Status: "Up 5 seconds (healthy)"}, false},
		{"health field of newer engines", inspected(container.StateRunning, container.Starting), time.Second,
			container.Summary{ID: "c1", State: container.StateRunning, Status: "Up 1 second (health: starting)",
				Health: &container.HealthSummary{Status: container.Healthy}}, false},
		{"unhealthy: the probe output may have changed", inspected(container.StateRunning, container.Unhealthy), time.Second,
			container.Summary{ID: "c1", State: container.StateRunning, Status: "Up 5 seconds (unhealthy)"}, false},
		{"too old", inspected(container.StateRunning, ""), statusMaxAge + time.Second,
			container.Summary{ID: "c1", State: container.StateRunning, Status: "Up 2 minutes"}, false},
		{"never inspected", inspected(container.StateRunning, ""), time.Second,
			container.Summary{ID: "c2", State: container.StateRunning, Status: "Up 5 seconds"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c statusCache
			c.put(tc.cached, &driver.Status{TaskID: "t1"}, now.Add(-tc.age))
			st, ok := c.get(tc.summary, now)
			if ok != tc.hit || (ok && st.TaskID != "t1") {
				t.Fatalf("get = %v, %v; want hit %v", describe(st), ok, tc.hit)
			}
		})
	}
}

// An inspection that began before the recorded one does not replace it.
func TestStatusCacheKeepsNewest(t *testing.T) {
	now := time.Now()
	var c statusCache
	ci := func(state container.ContainerState) container.InspectResponse {
		return container.InspectResponse{ID: "c1", State: &container.State{Status: state}}
	}
	c.put(ci(container.StateExited), &driver.Status{State: driver.StateExited}, now)
	c.put(ci(container.StateRunning), &driver.Status{State: driver.StateRunning}, now.Add(-time.Second))
	if _, ok := c.get(container.Summary{ID: "c1", State: container.StateExited}, now); !ok {
		t.Fatal("the older inspection replaced the newer one")
	}
	c.keepOnly(map[string]bool{})
	if _, ok := c.get(container.Summary{ID: "c1", State: container.StateExited}, now); ok {
		t.Fatal("a container the listing no longer shows is still cached")
	}
}
