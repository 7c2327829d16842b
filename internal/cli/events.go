package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/spf13/cobra"
)

type eventsOptions struct {
	since  uint64
	follow bool
}

func newEventsCommand(e *env) *cobra.Command {
	var o eventsOptions
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show recent changes of deployments, tasks and nodes",
		Long: `Show the cluster's recent changes of deployments, tasks and nodes, each with
the Raft index that made it, from the bounded ring each manager keeps.
--since INDEX shows only later ones; --follow streams them as they come,
and resumes after a manager fails from the last index seen, on another
manager. Where a manager lacks some (it started after them, or its ring
dropped them), a line on stderr says which indexes are missing. --json
prints one JSON object per line.`,
		Example: "  berth events\n  berth events --follow --since 1200\n  berth events --json --follow",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.events(cmd.Context(), o)
		},
	}
	cmd.Flags().Uint64Var(&o.since, "since", 0, "show only the events after this Raft index")
	cmd.Flags().BoolVar(&o.follow, "follow", false, "keep streaming new events")
	return cmd
}

func (e *env) events(ctx context.Context, o eventsOptions) error {
	c := e.client()
	since := o.since
	for {
		wait := time.Duration(0)
		if o.follow {
			wait = blockingWait
		}
		r, err := c.Events(ctx, since, wait)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil
			}
			if o.follow && retryable(err) {
				if err := pace(ctx, &since, since); err != nil {
					return nil
				}
				continue // another manager, from the same index
			}
			return err
		}
		if r.Gap != nil {
			fmt.Fprintf(e.stderr, "berth: the events of indexes %d to %d are not on this manager (it started or restored a snapshot after them, or they dropped off its ring)\n", r.Gap.From, r.Gap.To)
		}
		for _, ev := range r.Events {
			if e.structured() {
				if err := e.renderItem(ev); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintln(e.stdout, eventLine(ev))
		}
		since = max(since, r.Index)
		if !o.follow {
			return nil
		}
	}
}

// eventLine is "1204  task        roll-web-2  updated  running  version 2, desired running".
func eventLine(ev api.Event) string {
	name := ev.ID
	if ev.Name != "" {
		name = ev.Name
	}
	return fmt.Sprintf("%-6d  %-10s  %s  %s  %s  %s", ev.Index, ev.Kind, name, ev.Action, dash(ev.State), ev.Detail)
}

// retryable reports whether an error is the connection's or a manager's
// trouble, not a refusal: a follow goes on (with another manager).
func retryable(err error) bool {
	var apiErr *api.Error
	return !errors.As(err, &apiErr) || apiErr.Status >= 500
}
