package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/registry"
)

// printSavedImages lists, on stderr, the images the saved apps need and
// where a restore will find them.
func (e *env) printSavedImages(needs []api.SnapshotImage, carried bool) {
	if len(needs) == 0 {
		return
	}
	fmt.Fprintln(e.stderr, "Images the saved apps need:")
	tw := tabwriter.NewWriter(e.stderr, 2, 4, 2, ' ', 0)
	for _, n := range needs {
		size, where := "-", "pulled by the nodes"
		if n.Cluster {
			size = registry.FormatSize(n.Size)
			switch {
			case !n.Present:
				size, where = "-", "missing: no manager holds it"
			case carried:
				where = "in this snapshot"
			default:
				where = "cluster registry (not in this snapshot; --with-images carries it)"
			}
		}
		fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\n", n.App, n.Service, n.Ref, size, where)
	}
	_ = tw.Flush()
}

// printRestoredImages lists, on stderr, the cluster images the restored
// apps need that the cluster lacks, and how to get each back.
func (e *env) printRestoredImages(images []api.SnapshotImage) {
	var carried int
	var missing []api.SnapshotImage
	for _, im := range images {
		if im.Carried {
			carried++
		}
		if !im.Present {
			missing = append(missing, im)
		}
	}
	if carried > 0 {
		fmt.Fprintf(e.stderr, "Put %d image(s) the snapshot carried in the cluster registry\n", carried)
	}
	if len(missing) == 0 {
		return
	}
	fmt.Fprintln(e.stderr, "Images the restored apps need that the cluster lacks (their tasks cannot start without them):")
	tw := tabwriter.NewWriter(e.stderr, 2, 4, 2, ' ', 0)
	for _, im := range missing {
		how := "rerun berth up in its project (it pushes the local image again)"
		if im.Build {
			how = "rerun berth up in its project (it builds the image again)"
		}
		fmt.Fprintf(tw, "  %s/%s\t%s\t%s\n", im.App, im.Service, im.Ref, how)
	}
	_ = tw.Flush()
	fmt.Fprintln(e.stderr, "Or restore from a snapshot taken with berth snapshot save --with-images.")
}
