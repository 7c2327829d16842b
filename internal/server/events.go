package server

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/api"
)

// events answers `berth events` from this manager's ring of recent changes
// (state.Store.Events): a follower answers as the leader would, since every
// manager makes the same events from the same entries.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	since, wait, err := queryOptions(r)
	if err != nil {
		return err
	}
	if since == 0 {
		wait = 0 // index 0 asks for what is kept, at once
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	evs, gap, err := s.store.Events(ctx, since)
	if err != nil && ctx.Err() == nil {
		return err
	}
	resp := api.EventsResponse{Events: make([]api.Event, 0, len(evs)), Index: since}
	for _, e := range evs {
		resp.Events = append(resp.Events, api.Event(e))
		resp.Index = max(resp.Index, e.Index)
	}
	if gap != nil {
		resp.Gap = &api.EventGap{From: gap.From, To: gap.To}
		resp.Index = max(resp.Index, gap.To)
	}
	setIndex(w, max(resp.Index, 1))
	writeJSON(w, http.StatusOK, resp)
	return nil
}
