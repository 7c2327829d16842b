package types

import (
	"slices"
	"strconv"
	"time"
)

// VolumePin records the node that holds the named volumes of one replica: a
// slot of a replicated service. Each node's engine keeps its own copy of a
// named volume, so a replica placed again (after `down` and `up`, a restart,
// its node coming back) must go back to the pinned node, where its data is.
// A pin is made when the slot is first placed, outlives `down` (`down -v`
// removes it with the volumes) and is moved only by a user
// (`berth service unpin`).
type VolumePin struct {
	ID      string `json:"id"` // VolumePinID(App, Service, Slot)
	App     string `json:"app"`
	Service string `json:"service"`
	Slot    int    `json:"slot"`
	NodeID  string `json:"node_id"`
	// Volumes are the named volumes the replica mounted when pinned, sorted.
	Volumes     []string  `json:"volumes"`
	CreatedAt   time.Time `json:"created_at"`
	CreateIndex uint64    `json:"create_index"`
}

// VolumePinID is the key of a slot's pin: "<app>/<service>.<slot>".
func VolumePinID(app, service string, slot int) string {
	return ServiceID(app, service) + "." + strconv.Itoa(slot)
}

// Replica names the pinned slot as users write it: "<service>.<slot>".
func (p *VolumePin) Replica() string { return p.Service + "." + strconv.Itoa(p.Slot) }

// PinnedVolumes returns, sorted, the named volumes of app that svc mounts
// and whose data lives on one node: those of the local volume driver (the
// default). A volume of another driver (NFS, a cloud plugin) may reach the
// same data from any node, anonymous volumes start empty on every run, and a
// global service's tasks are bound to their nodes anyway: none of these pin.
func (s *Service) PinnedVolumes(app *App) []string {
	if s.Mode == ModeGlobal || app == nil {
		return nil
	}
	var out []string
	for _, m := range s.Mounts {
		if m.Type != MountVolume || m.Source == "" {
			continue
		}
		if v := app.Volumes[m.Source]; v != nil && v.Driver != "" && v.Driver != "local" {
			continue
		}
		if !slices.Contains(out, m.Source) {
			out = append(out, m.Source)
		}
	}
	slices.Sort(out)
	return out
}
