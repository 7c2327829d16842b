package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/registry"
)

// newImageCommand groups the cluster registry's images (issue 16): those
// `berth up` pushed for builds and local-only images. (`berth images`, per
// project as in Compose, is another command.)
func newImageCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "List the images the cluster's registry holds",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "ls",
		Short: "List the cluster's images: size, copies, services and nodes that use them",
		Long: `List the images the cluster's registry holds: those berth up pushed for
build: services and for images only your engine had. REPLICAS is how many
managers hold every blob of an image; SERVICES are those whose current
version runs it and NODES where their replicas are. Images no service uses
are kept for rollback (the two newest of each service), then collected.`,
		Example: "  berth image ls\n  berth image ls --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return e.imageLs(cmd.Context()) },
	})
	return cmd
}

func (e *env) imageLs(ctx context.Context) error {
	ims, err := e.client().Images(ctx)
	if err != nil {
		return err
	}
	if e.structured() {
		return writeJSON(e, ims)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tDIGEST\tIMAGE ID\tSIZE\tPUSHED\tREPLICAS\tSERVICES\tNODES")
	for _, im := range ims {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", im.Repo, shortDigest(im.Digest), shortDigest(im.Config),
			registry.FormatSize(im.Size), age(e.now(), im.PushedAt)+" ago", strconv.Itoa(len(im.Replicas)),
			dash(strings.Join(im.Services, ",")), dash(strings.Join(im.Nodes, ",")))
	}
	return tw.Flush()
}

// shortDigest is a digest as Docker shows image IDs: 12 hex digits.
func shortDigest(d string) string {
	return shortID(strings.TrimPrefix(d, "sha256:"))
}
