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

// LabelNetwork marks a cluster network (`berth network create`) that berth
// made on this engine; its value is the network's name.
const LabelNetwork = "berth.network"

// clusterNetworkLabels mark a cluster network berth made: its own labels
// and LabelNetwork, but no app's, so no app's `down` removes it.
func clusterNetworkLabels(name string, own map[string]string) map[string]string {
	l := make(map[string]string, len(own)+1)
	for k, v := range own {
		l[k] = v
	}
	l[LabelNetwork] = name
	return l
}

// madeByBerth reports whether labels are those berth gives app's networks
// and volumes, or (network given) those of cluster network network.
func madeByBerth(labels map[string]string, app, network string) bool {
	if labels[LabelApp] == app {
		return true
	}
	return network != "" && labels[LabelNetwork] == network
}

// ownerOf names who made a network or volume berth did not, from its
// labels, for an error: another berth app, a Compose project, or nobody
// berth knows.
func ownerOf(labels map[string]string) string {
	switch {
	case labels[LabelApp] != "":
		return "berth app " + labels[LabelApp] + ", not this one"
	case labels[LabelNetwork] != "":
		return "berth for cluster network " + labels[LabelNetwork]
	case labels[labelComposeProject] != "":
		return "Compose project " + labels[labelComposeProject] + " (" + labelComposeProject + "), not by berth"
	}
	return "another tool, not by berth (it has no berth labels)"
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
