package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

// newServiceCommand groups operations on one service of the app.
func newServiceCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Operate on a service of the app (unpin its volumes)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "unpin SERVICE[.REPLICA]...",
		Short: "Let replicas with named volumes start on another node, with empty volumes",
		Long: `A replica that mounts a named volume is pinned to the node where it first ran,
because the volume's data lives on that node; berth ps lists the pins. When
that node is drained, down or removed, the replica waits for it. unpin
forgets the pin of one replica (db.2) or of every replica of a service
(db): the replica's next placement may pick any node, where its volumes
start empty, and pins it there. The old data stays on the old node.`,
		Example: "  berth service unpin db.1\n  berth service unpin db -p shop",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.unpin(cmd.Context(), args)
		},
	})
	cmd.AddCommand(newServiceLsCommand(e))
	return cmd
}

// parseReplica reads SERVICE or SERVICE.N (service names may hold dots, so
// only a numeric last part is a replica number).
func parseReplica(s string) (service string, slot int, err error) {
	service = s
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		if n, convErr := strconv.Atoi(s[i+1:]); convErr == nil {
			if n < 1 {
				return "", 0, fmt.Errorf("invalid replica %q: replica numbers start at 1", s)
			}
			service, slot = s[:i], n
		}
	}
	if service == "" {
		return "", 0, fmt.Errorf("invalid replica %q: want SERVICE or SERVICE.N, e.g. db.1", s)
	}
	return service, slot, nil
}

func (e *env) unpin(ctx context.Context, args []string) error {
	type target struct {
		arg, service string
		slot         int
	}
	var targets []target
	for _, a := range args {
		svc, slot, err := parseReplica(a)
		if err != nil {
			return err
		}
		targets = append(targets, target{a, svc, slot})
	}
	name, err := e.appName(ctx)
	if err != nil {
		return err
	}
	c := e.client()
	nodes, err := c.ListNodes(ctx)
	if err != nil {
		return err
	}
	names := nodeNames(nodes)
	for _, t := range targets {
		removed, err := c.Unpin(ctx, name, t.service, t.slot)
		if errors.Is(err, api.ErrNotFound) {
			return fmt.Errorf("%s of app %s has no pinned volume; berth ps lists the pins", t.arg, name)
		}
		if err != nil {
			return fmt.Errorf("unpin %s: %w", t.arg, err)
		}
		for _, p := range removed {
			what := "volume " + strings.Join(p.Volumes, ", ") + " stays"
			if len(p.Volumes) > 1 {
				what = "volumes " + strings.Join(p.Volumes, ", ") + " stay"
			}
			fmt.Fprintf(e.stdout, "Unpinned %s: its %s on node %s; its next placement may pick any node, where its volumes start empty\n",
				p.Replica(), what, nodeName(p.NodeID, names))
		}
	}
	return nil
}

// appPins fetches the app's volume pins for ps; a manager that predates
// pins has none to show.
func appPins(ctx context.Context, c *api.Client, app string) ([]*types.VolumePin, error) {
	pins, err := c.VolumePins(ctx, app)
	if errors.Is(err, api.ErrNotFound) {
		return nil, nil
	}
	return pins, err
}

// writePinTable prints, under the ps table, which node holds each
// replica's named volumes.
func writePinTable(w io.Writer, pins []*types.VolumePin, nodes map[string]string) error {
	if len(pins) == 0 {
		return nil
	}
	pins = slices.Clone(pins)
	slices.SortFunc(pins, func(a, b *types.VolumePin) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Slot, b.Slot))
	})
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tVOLUMES\tPINNED TO NODE")
	for _, p := range pins {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Replica(), strings.Join(p.Volumes, ","), nodeName(p.NodeID, nodes))
	}
	return tw.Flush()
}
