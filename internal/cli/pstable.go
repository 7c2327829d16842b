package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// currentTasks keeps what a user means by "the app's tasks", as docker
// compose ps does: every task not yet finished, and for a replica with none
// left, its latest task when it ended on its own (so a crashed one-shot
// still shows how it ended). A task the cluster stopped on purpose (scaled
// down, replaced, its service removed) is history, shown only with -a.
func currentTasks(tasks []*types.Task) []*types.Task {
	latest := map[string]*types.Task{}
	live := map[string]bool{}
	var out []*types.Task
	for _, t := range tasks {
		k := t.Service + "/" + slotKey(t)
		if !t.State.Terminal() {
			out = append(out, t)
			live[k] = true
		}
		if cur, ok := latest[k]; !ok || newer(t, cur) {
			latest[k] = t
		}
	}
	for k, t := range latest {
		if !live[k] && t.DesiredState != types.DesiredShutdown {
			out = append(out, t)
		}
	}
	return out
}

// sortTasks orders rows by service, replica, then age (newest first).
func sortTasks(tasks []*types.Task) {
	slices.SortStableFunc(tasks, func(a, b *types.Task) int {
		return cmp.Or(
			cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Slot, b.Slot),
			cmp.Compare(a.NodeID, b.NodeID),
			cmp.Compare(b.CreateIndex, a.CreateIndex),
		)
	})
}

// writeTaskTable prints the ps table. nodes maps node IDs to names.
func writeTaskTable(w io.Writer, app *types.App, tasks []*types.Task, nodes map[string]string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tTASK\tNODE\tSTATE\tHEALTH\tPORTS\tRESTARTS\tAGE")
	for _, t := range tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n",
			t.Service, t.Name(), nodeName(t.NodeID, nodes), taskState(t),
			dash(taskHealth(t)), dash(servicePorts(app.Service(t.Service))),
			t.Attempt, age(now, t.CreatedAt))
	}
	return tw.Flush()
}

// taskHealth is the health of a task that runs; a stopped task has none
// (its last health check result says nothing about it now).
func taskHealth(t *types.Task) string {
	if t.State.Terminal() {
		return ""
	}
	return string(t.Health)
}

func nodeName(id string, nodes map[string]string) string {
	if id == "" {
		return "-"
	}
	if n := nodes[id]; n != "" {
		return n
	}
	return id[:min(len(id), 8)]
}

// taskState is the observed state, with what explains it: the scheduler's
// reason for a pending task, the agent's progress of a starting one (an
// image pull), that a running one is paused, the exit code and error of a
// finished one, and
// the desired state when it differs (a task being stopped).
func taskState(t *types.Task) string {
	s := string(t.State)
	switch t.State {
	case types.TaskPending:
		if t.PendingReason != "" {
			s += ": " + t.PendingReason
		}
	case types.TaskStarting:
		if t.Progress != "" {
			s += ": " + t.Progress
		}
	case types.TaskRunning:
		if t.Paused {
			s += " (paused)"
		}
	case types.TaskComplete, types.TaskFailed:
		if t.ExitCode != nil {
			s += fmt.Sprintf(" (exit %d)", *t.ExitCode)
		}
	}
	if e := taskError(t); e != "" && t.State.Terminal() {
		s += ": " + e
	}
	if t.DesiredState == types.DesiredShutdown && !t.State.Terminal() {
		s += " -> shutdown"
	}
	return s
}

// servicePorts renders a service's ports as docker ps does:
// "127.0.0.1:8080->80/tcp", "0.0.0.0:53->53/udp", or "9000/tcp" when only
// exposed inside the app.
func servicePorts(svc *types.Service) string {
	if svc == nil {
		return ""
	}
	parts := make([]string, 0, len(svc.Ports))
	for _, p := range svc.Ports {
		proto := cmp.Or(p.Protocol, "tcp")
		if p.Published == 0 {
			parts = append(parts, fmt.Sprintf("%d/%s", p.Target, proto))
			continue
		}
		host := cmp.Or(p.HostIP, "0.0.0.0")
		parts = append(parts, fmt.Sprintf("%s->%d/%s", joinHostPort(host, p.Published), p.Target, proto))
	}
	return strings.Join(parts, ", ")
}

func joinHostPort(host string, port uint16) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// age is a short human duration since t: "45s", "12m", "3h", "2d".
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
