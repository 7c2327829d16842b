package server

import (
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/types"
)

// Limits bound the work one submit can ask of the cluster. Every task is a
// record in every manager's memory and Raft log, and the reconciler walks
// them all: without a bound, one app of 1,000 services x 10,000 replicas
// passed validation and took the managers to gigabytes and lost leadership.
// The bounds are checked on the leader at submit (PUT app, scale); they
// are soft across concurrent submits, which is enough to stop a runaway.
type Limits struct {
	// TasksPerApp bounds the tasks one app runs (replicas of all its
	// services, a global service counting one task per node).
	TasksPerApp int
	// TasksPerCluster bounds the tasks of all apps together.
	TasksPerCluster int
	// ServicesPerApp bounds the services of one app.
	ServicesPerApp int
	// ReplicasPerService bounds one replicated service's replicas.
	ReplicasPerService int
}

// Default limits: far above what a berth cluster of a few dozen nodes runs,
// far below what exhausts a manager's memory (about 300,000 tasks did).
const (
	DefaultTasksPerApp        = 10_000
	DefaultTasksPerCluster    = 100_000
	DefaultServicesPerApp     = 1_000
	DefaultReplicasPerService = 10_000
)

// The server flags that raise each limit, named in the refusal so that the
// user knows what to ask an operator for.
const (
	FlagTasksPerApp        = "max-tasks-per-app"
	FlagTasksPerCluster    = "max-tasks-per-cluster"
	FlagServicesPerApp     = "max-services-per-app"
	FlagReplicasPerService = "max-replicas-per-service"
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		TasksPerApp: DefaultTasksPerApp, TasksPerCluster: DefaultTasksPerCluster,
		ServicesPerApp: DefaultServicesPerApp, ReplicasPerService: DefaultReplicasPerService,
	}
}

// fill replaces unset (zero or negative) limits with the defaults.
func (l *Limits) fill() {
	d := DefaultLimits()
	for _, p := range []struct{ v, def *int }{
		{&l.TasksPerApp, &d.TasksPerApp}, {&l.TasksPerCluster, &d.TasksPerCluster},
		{&l.ServicesPerApp, &d.ServicesPerApp}, {&l.ReplicasPerService, &d.ReplicasPerService},
	} {
		if *p.v <= 0 {
			*p.v = *p.def
		}
	}
}

// limitError is the refusal: 422, naming the field, the limit and the flag
// that raises it.
func limitError(field string, flag string, format string, args ...any) *apiError {
	e := badRequest(field, format, args...)
	e.status = http.StatusUnprocessableEntity
	e.msg += fmt.Sprintf(" (a manager's --%s flag raises the limit)", flag)
	return e
}

// checkApp refuses an app beyond the limits, given how many nodes the
// cluster has (for global services) and how many tasks the other apps run.
func (l Limits) checkApp(app *types.App, nodes, otherTasks int) error {
	if len(app.Services) > l.ServicesPerApp {
		return limitError("services", FlagServicesPerApp, "the app has %d services, more than the limit of %d per app", len(app.Services), l.ServicesPerApp)
	}
	for _, svc := range app.Services {
		if svc.Mode != types.ModeGlobal && svc.Replicas > l.ReplicasPerService {
			return limitError("services."+svc.Name+".replicas", FlagReplicasPerService,
				"%d replicas is more than the limit of %d per service", svc.Replicas, l.ReplicasPerService)
		}
	}
	return l.checkTasks(appTasks(app, nodes), otherTasks)
}

// checkTasks refuses an app that would run more tasks than the limits
// allow, itself or with the other apps.
func (l Limits) checkTasks(tasks, otherTasks int) error {
	if tasks > l.TasksPerApp {
		return limitError("services", FlagTasksPerApp, "the app would run %d tasks, more than the limit of %d per app", tasks, l.TasksPerApp)
	}
	if total := tasks + otherTasks; total > l.TasksPerCluster {
		return limitError("services", FlagTasksPerCluster,
			"the cluster would run %d tasks (%d of this app, %d of the others), more than the limit of %d per cluster",
			total, tasks, otherTasks, l.TasksPerCluster)
	}
	return nil
}

// checkScale refuses scaling svc of app to replicas beyond the limits.
func (l Limits) checkScale(app *types.App, svc string, replicas, nodes, otherTasks int) error {
	if replicas > l.ReplicasPerService {
		return limitError("replicas", FlagReplicasPerService, "%d replicas is more than the limit of %d per service", replicas, l.ReplicasPerService)
	}
	tasks := 0
	for _, s := range app.Services {
		if s.Name == svc {
			tasks += replicas
		} else {
			tasks += serviceTasks(s, nodes)
		}
	}
	return l.checkTasks(tasks, otherTasks)
}

// appTasks is how many tasks an app asks for: a deleting app none more.
func appTasks(app *types.App, nodes int) int {
	if app.Deleting {
		return 0
	}
	n := 0
	for _, s := range app.Services {
		n += serviceTasks(s, nodes)
	}
	return n
}

// serviceTasks counts a global service as one task per node, the most it
// can run now.
func serviceTasks(s *types.Service, nodes int) int {
	if s.Mode == types.ModeGlobal {
		return nodes
	}
	return max(s.Replicas, 0)
}

// tasksBesides is how many tasks the apps other than name ask for, and
// how many nodes the cluster has, from this manager's state.
func (s *Server) tasksBesides(name string) (tasks, nodes int) {
	v := s.store.View()
	nodes = len(v.Nodes())
	for _, a := range v.Apps() {
		if a.Name != name {
			tasks += appTasks(a, nodes)
		}
	}
	return tasks, nodes
}

// checkAppLimits refuses a submitted app beyond the configured limits.
func (s *Server) checkAppLimits(app *types.App) error {
	others, nodes := s.tasksBesides(app.Name)
	return s.cfg.Limits.checkApp(app, nodes, others)
}

// checkScaleLimits refuses a scale beyond the configured limits.
func (s *Server) checkScaleLimits(app *types.App, svc string, replicas int) error {
	others, nodes := s.tasksBesides(app.Name)
	return s.cfg.Limits.checkScale(app, svc, replicas, nodes, others)
}
