package server

import (
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// volumePins lists an app's pins. Pins outlive the app (`down` without -v),
// so an app that is not deployed answers its pins, or an empty list.
func (s *Server) volumePins(w http.ResponseWriter, r *http.Request) error {
	pins := s.store.View().VolumePins(r.PathValue("name"))
	if pins == nil {
		pins = []*types.VolumePin{}
	}
	writeJSON(w, http.StatusOK, pins)
	return nil
}

// unpin removes the pins of a service, or of one slot with ?slot=N.
func (s *Server) unpin(w http.ResponseWriter, r *http.Request) error {
	// No service has more replicas than the limit, so no slot is higher.
	maxSlot := s.cfg.Limits.ReplicasPerService
	slot := 0
	if v := r.URL.Query().Get("slot"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSlot {
			return badRequest("slot", "must be a replica number from 1 to %d, not %q", maxSlot, v)
		}
		slot = n
	}
	res, err := s.Commit(r.Context(), &state.UnpinVolumes{App: r.PathValue("name"), Service: r.PathValue("service"), Slot: slot})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
