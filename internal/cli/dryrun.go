package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
)

// upDryRun is `berth up --dry-run`: the manager plans the submission as it
// would apply it and commits nothing. Nothing is built, pushed or started
// (not even a local cluster): a service with a build keeps the image the
// cluster has, so only its other changes show. up's other flags (SERVICE...,
// --scale, --force-recreate, orphans) shape the plan as they would the up.
func (e *env) upDryRun(ctx context.Context, app *types.App, o upOptions, selected []string) error {
	c := e.client()
	stored, err := deployedApp(ctx, c, app.Name)
	if err != nil {
		return err
	}
	keepBuiltImages(app, stored)
	so, err := e.orphans(ctx, app, stored, o.submitOptions(selected))
	if err != nil {
		return err
	}
	p, err := c.PlanAppWith(ctx, app, so)
	if err != nil {
		return err
	}
	if e.structured() {
		return e.render(p)
	}
	fmt.Fprintf(e.stdout, "Plan for app %s (a dry run: nothing was changed)\n", p.App)
	width := 0
	for _, s := range p.Services {
		width = max(width, len(s.Name))
	}
	for _, s := range p.Services {
		fmt.Fprintf(e.stdout, "  %-*s  %s\n", width, s.Name, planLine(s))
	}
	return nil
}

// keepBuiltImages gives each service that is built the image the cluster
// runs now, since a dry run builds nothing.
func keepBuiltImages(app, stored *types.App) {
	if stored == nil {
		return
	}
	for _, svc := range app.Services {
		if prev := stored.Service(svc.Name); svc.Build != nil && prev != nil {
			svc.ImageID, svc.ClusterImage = prev.ImageID, prev.ClusterImage
		}
	}
}

// planLine is one service's plan: "update (version 1 -> 2): env, image;
// starts 2 tasks, stops 2".
func planLine(s api.ServicePlan) string {
	var b strings.Builder
	switch s.Action {
	case api.PlanUpdate:
		fmt.Fprintf(&b, "update (version %d -> %d): %s", s.FromVersion, s.ToVersion, strings.Join(s.Fields, ", "))
	default:
		b.WriteString(s.Action)
	}
	var moves []string
	if s.Start > 0 {
		moves = append(moves, "starts "+countOf(s.Start, "task", "tasks"))
	}
	if s.Stop > 0 {
		moves = append(moves, "stops "+countOf(s.Stop, "task", "tasks"))
	}
	if len(moves) > 0 {
		b.WriteString("; " + strings.Join(moves, ", "))
	}
	return b.String()
}
