package controller

import (
	"fmt"

	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// depsBlock returns why the service's new tasks must wait for depends_on, or
// "" when every dependency meets its condition. Dependencies are checked only
// before a task is placed: a running task is never stopped because one of
// its dependencies restarts, as in Compose.
func depsBlock(view *state.View, app *types.App, svc *types.Service) string {
	for _, dep := range svc.DependsOn {
		depSvc := app.Service(dep.Service)
		if depSvc == nil {
			if dep.Required {
				return fmt.Sprintf("waiting for service %s, which the app does not have", dep.Service)
			}
			continue
		}
		if reason := depUnmet(view, app.Name, depSvc, dep.Condition); reason != "" {
			return reason
		}
	}
	return ""
}

// depUnmet checks one condition against the dependency's wanted tasks of its
// current version.
func depUnmet(view *state.View, app string, dep *types.Service, condition string) string {
	wanted := 0
	for _, t := range view.Tasks(taskFilter(app, dep.Name)) {
		if t.DesiredState != types.DesiredRunning || t.ServiceVersion != dep.Version {
			continue
		}
		wanted++
		switch condition {
		case types.ConditionCompleted:
			if t.State != types.TaskComplete {
				return fmt.Sprintf("waiting for %s to complete successfully", dep.Name)
			}
		case types.ConditionHealthy:
			if !t.Healthy(dep) {
				return fmt.Sprintf("waiting for %s to be healthy", dep.Name)
			}
		default: // service_started: running, or a one-shot already done
			if t.State != types.TaskRunning && t.State != types.TaskComplete {
				return fmt.Sprintf("waiting for %s to start", dep.Name)
			}
		}
	}
	if wanted == 0 && (dep.Mode == types.ModeGlobal || dep.Replicas > 0) {
		return fmt.Sprintf("waiting for %s to start", dep.Name)
	}
	return ""
}

func taskFilter(app, service string) state.TaskFilter {
	return state.TaskFilter{App: app, Service: service}
}
