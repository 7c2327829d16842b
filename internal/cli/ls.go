package cli

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

type lsOptions struct {
	all     bool
	quiet   bool
	format  string
	filters []string // KEY=VALUE: name=
}

func newLsCommand(e *env) *cobra.Command {
	var o lsOptions
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the apps deployed on the cluster",
		Long: `List the apps deployed on the cluster, with their version, services and
status: their current tasks counted by Compose state ("running(2),
exited(1)"), as docker compose ls does. An app whose every task has exited
is listed only with -a. -q prints the names only; --format json prints one
JSON object a line; -o json|yaml (or --json) one document. --filter
name=X keeps the apps whose name matches X, as docker's filters match: a
regular expression found in the name (repeat: any of them).`,
		Example: "  berth ls\n  berth ls -a -q\n  berth ls --format json\n  berth ls --filter name=shop",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.ls(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "show the apps whose every task has exited too")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only the apps' names")
	f.StringVar(&o.format, "format", "", "table or json (one object a line)")
	f.StringArrayVar(&o.filters, "filter", nil, "keep the apps that match, as docker compose ls: name=X (repeatable)")
	return cmd
}

// nameFilter reads ls's --filter name=X values into a test of an app's
// name: docker's filters.Match, where X matches as a regular expression
// found in the name (or, when X is no regular expression, as the whole
// name); any of several. No filter keeps every app.
func nameFilter(filters []string) (func(string) bool, error) {
	var tests []func(string) bool
	for _, f := range filters {
		key, v, ok := strings.Cut(f, "=")
		if !ok || key != "name" {
			return nil, fmt.Errorf("--filter takes name=X, as docker compose ls, not %q", f)
		}
		if re, err := regexp.Compile(v); err == nil {
			tests = append(tests, re.MatchString)
		} else {
			tests = append(tests, func(name string) bool { return name == v })
		}
	}
	return func(name string) bool {
		return len(tests) == 0 || slices.ContainsFunc(tests, func(match func(string) bool) bool { return match(name) })
	}, nil
}

func (e *env) ls(ctx context.Context, o lsOptions) error {
	kind, err := parseFormat(o.format)
	if err != nil || kind == formatTemplate {
		return fmt.Errorf("--format takes table or json, not %q", o.format)
	}
	if err := e.formatAndOutput(o.format); err != nil {
		return err
	}
	keep, err := nameFilter(o.filters)
	if err != nil {
		return err
	}
	apps, tasks, err := e.clusterApps(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(apps, func(a, b *types.App) int { return strings.Compare(a.Name, b.Name) })
	byApp := map[string][]*types.Task{}
	for _, t := range currentTasks(tasks) {
		byApp[t.App] = append(byApp[t.App], t)
	}
	rows := make([]api.AppSummary, 0, len(apps))
	var shown []*types.App
	for _, a := range apps {
		if (!o.all && allExited(byApp[a.Name])) || !keep(a.Name) {
			continue
		}
		rows = append(rows, appSummary(a, byApp[a.Name]))
		shown = append(shown, a)
	}
	switch {
	case o.quiet:
		for _, r := range rows {
			fmt.Fprintln(e.stdout, r.Name)
		}
		return nil
	case e.structured():
		return e.render(rows)
	case kind == formatJSON:
		return writeJSONLines(e.stdout, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tSERVICES\tSTATUS\tUPDATED")
	for i, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s ago\n", r.Name, r.Version, dash(strings.Join(r.Services, ",")), dash(r.Status), age(e.now(), shown[i].UpdatedAt))
	}
	return tw.Flush()
}

// allExited reports whether an app has tasks and every one has ended: what
// docker compose ls hides without -a.
func allExited(tasks []*types.Task) bool {
	return len(tasks) > 0 && !slices.ContainsFunc(tasks, func(t *types.Task) bool { return !t.State.Terminal() })
}

func appSummary(a *types.App, tasks []*types.Task) api.AppSummary {
	s := api.AppSummary{Name: a.Name, Version: a.Version, Services: []string{}, Deleting: a.Deleting,
		UpdatedAt: a.UpdatedAt.UTC().Format(time.RFC3339)}
	for _, svc := range a.Services {
		if !svc.IsOneOff() { // its tasks are counted below, as Compose's run containers
			s.Services = append(s.Services, svc.Name)
		}
	}
	counts := map[string]int{}
	for _, t := range tasks {
		counts[composeState(t)]++
	}
	var parts []string
	for _, st := range composeStates {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s(%d)", st, n))
		}
	}
	s.Status = strings.Join(parts, ", ")
	if a.Deleting {
		s.Status = "removing"
	}
	return s
}

// clusterApps lists every app on the cluster and every task of them (ls,
// service ls).
func (e *env) clusterApps(ctx context.Context) ([]*types.App, []*types.Task, error) {
	c := e.client()
	apps, err := c.ListApps(ctx)
	if err != nil {
		return nil, nil, err
	}
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{})
	return apps, tasks, err
}
