package docker

import (
	"strconv"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// Labels berth puts on containers, networks and volumes.
const (
	LabelNode       = "berth.node"
	LabelApp        = "berth.app"
	LabelService    = "berth.service"
	LabelTask       = "berth.task"
	LabelSlot       = "berth.slot"
	LabelVersion    = "berth.version"
	LabelStopGrace  = "berth.stop-grace"
	LabelStopSignal = "berth.stop-signal"

	// Compose's own labels, so `docker ps` and tools that know Compose
	// group berth's containers the familiar way.
	labelComposeProject = "com.docker.compose.project"
	labelComposeService = "com.docker.compose.service"
)

// containerLabels are the service's own labels plus berth's, which win.
func containerLabels(cfg *driver.TaskConfig, nodeID string) map[string]string {
	t, s := cfg.Task, cfg.Service
	l := make(map[string]string, len(s.Labels)+10)
	for k, v := range s.Labels {
		l[k] = v
	}
	l[LabelNode] = nodeID
	l[LabelApp] = t.App
	l[LabelService] = t.Service
	l[LabelTask] = t.ID
	l[LabelSlot] = strconv.Itoa(t.Slot)
	l[LabelVersion] = strconv.FormatUint(t.ServiceVersion, 10)
	l[LabelStopGrace] = s.StopGracePeriod.String()
	l[LabelStopSignal] = s.StopSignal
	l[labelComposeProject] = t.App
	l[labelComposeService] = t.Service
	return l
}

// appLabels mark networks and volumes berth made for an app.
func appLabels(app string, own map[string]string) map[string]string {
	l := make(map[string]string, len(own)+2)
	for k, v := range own {
		l[k] = v
	}
	l[LabelApp] = app
	l[labelComposeProject] = app
	return l
}

// containerName is "<app>-<service>-<slot>-<task id prefix>"; the task ID
// keeps a replacement task of the same slot from clashing with the old one.
func containerName(t *types.Task) string {
	id := t.ID
	if len(id) > 8 {
		id = id[:8]
	}
	return t.Name() + "-" + id
}

func networkName(app string, n *types.Network, key string) string {
	return types.NetworkKey(app, n, key)
}

func volumeName(app string, v *types.Volume, key string) string {
	if v != nil && v.External {
		if v.Name != "" {
			return v.Name
		}
		return key
	}
	return app + "_" + key
}
