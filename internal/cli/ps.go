package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

type psOptions struct {
	all bool
}

func newPsCommand(e *env) *cobra.Command {
	var o psOptions
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the app's tasks",
		Long: `List the app's tasks: one row per replica, with its node, state, health,
published ports, restarts and age. Only current tasks are shown (those still
running or about to, and the latest of each replica); -a shows every task the
manager remembers. --json prints the tasks as a JSON array. Below the table,
replicas with named volumes are listed with the node that holds their data
(see berth service unpin).`,
		Example: "  berth ps\n  berth ps -a\n  berth ps --json -p hello",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.ps(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&o.all, "all", "a", false, "show old tasks too (finished, replaced)")
	return cmd
}

func (e *env) ps(ctx context.Context, o psOptions) error {
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	app, err := c.GetApp(ctx, name)
	if errors.Is(err, api.ErrNotFound) {
		return fmt.Errorf("app %s is not deployed; deploy it with berth up", name)
	}
	if err != nil {
		return err
	}
	tasks, _, err := c.ListTasks(ctx, api.TaskQuery{App: name})
	if err != nil {
		return err
	}
	if !o.all {
		tasks = currentTasks(tasks)
	}
	sortTasks(tasks)
	if e.global.json {
		return writeJSON(e, tasks)
	}
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return err
	}
	pins, err := appPins(ctx, c, name) // pins.go
	if err != nil {
		return err
	}
	if err := writeTaskTable(e.stdout, app, tasks, nodeNames(nodes), e.now()); err != nil {
		return err
	}
	return writePinTable(e.stdout, pins, nodeNames(nodes))
}

func nodeNames(nodes []*types.Node) map[string]string {
	m := make(map[string]string, len(nodes))
	for _, n := range nodes {
		m[n.ID] = n.Name
	}
	return m
}

// writeJSON prints v indented; a nil slice prints as [] so scripts can
// always decode an array.
func writeJSON[T any](e *env, v []T) error {
	if v == nil {
		v = []T{}
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
