package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

func newLsCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List the apps deployed on the cluster",
		Example: "  berth ls\n  berth ls --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.ls(cmd.Context())
		},
	}
}

func (e *env) ls(ctx context.Context) error {
	apps, err := e.client().ListApps(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(apps, func(a, b *types.App) int { return strings.Compare(a.Name, b.Name) })
	if e.global.json {
		return writeJSON(e, apps)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tSERVICES\tSTATUS\tUPDATED")
	for _, a := range apps {
		status := "deployed"
		if a.Deleting {
			status = "removing"
		}
		names := make([]string, 0, len(a.Services))
		for _, s := range a.Services {
			names = append(names, s.Name)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s ago\n", a.Name, a.Version, dash(strings.Join(names, ",")), status, age(e.now(), a.UpdatedAt))
	}
	return tw.Flush()
}
