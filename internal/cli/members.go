package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newServerMembersCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the managers of the cluster's Raft group",
		Long: `List the managers: their Raft, API and cluster addresses, which one leads,
which vote, which the leader can reach, and their health: "unhealthy" for a
manager that cannot write its data directory (it answers reads with 503 and
hands leadership away until it can; why is printed below the table), "-"
for one that did not answer. With --json, print the list as JSON.`,
		Example: "  berth server members\n  berth server members --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.serverMembers(cmd.Context())
		},
	}
}

func (e *env) serverMembers(ctx context.Context) error {
	ms, err := e.client().Members(ctx)
	if err != nil {
		return err
	}
	if e.structured() {
		return writeJSON(e, ms)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tRAFT\tAPI\tLEADER\tVOTER\tREACHABLE\tHEALTH")
	var problems []string
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(m.ID), dash(m.Name), dash(m.RaftAddr), dash(m.APIAddr),
			yesNo(m.Leader), yesNo(m.Voter), yesNo(m.Reachable), dash(m.Health))
		if m.Problem != "" {
			problems = append(problems, fmt.Sprintf("%s is unhealthy: %s", dash(m.Name), m.Problem))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(e.stdout, p)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
