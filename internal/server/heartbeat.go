package server

import (
	"sync"
	"time"
)

// heartbeats holds each node's last heartbeat in the leader's memory. Beats
// are frequent and carry no state, so they never go through Raft; only a
// node's change of status does.
type heartbeats struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func newHeartbeats() *heartbeats { return &heartbeats{last: map[string]time.Time{}} }

func (h *heartbeats) Beat(nodeID string, at time.Time) {
	h.mu.Lock()
	h.last[nodeID] = at
	h.mu.Unlock()
}

// Last implements controller.Heartbeats.
func (h *heartbeats) Last(nodeID string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.last[nodeID]
	return t, ok
}
