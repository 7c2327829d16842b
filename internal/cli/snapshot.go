package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/api"
)

func newSnapshotCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save the cluster state to a file, or restore it from one",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var force, withImages bool
	save := &cobra.Command{
		Use:   "save FILE",
		Short: "Save a snapshot of the cluster state (apps, nodes, tokens) to FILE",
		Long: `Save a snapshot of the Raft-replicated cluster state to FILE (mode 0600: it
holds secrets sealed with the cluster key and token hashes). The snapshot is
written to FILE.tmp and renamed when complete, so FILE is never half
written. An existing FILE is kept unless --force.

It lists (on stderr) the images the saved apps' services need: those in the
cluster registry (built or local images that berth up pushed) with their
size, and those the nodes pull themselves. With --with-images the file also
carries the blobs of the cluster-registry images, so that a restore onto a
new cluster has them.`,
		Example: "  berth snapshot save backup.snap\n  berth snapshot save --with-images backup.snap",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.snapshotSave(cmd.Context(), args[0], force, withImages)
		},
	}
	save.Flags().BoolVar(&force, "force", false, "overwrite FILE if it exists")
	save.Flags().BoolVar(&withImages, "with-images", false, "also carry the cluster-registry images the apps use")
	restore := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster state with a snapshot saved by berth snapshot save",
		Long: `Replace the whole cluster state with the snapshot in FILE, on every manager.
Apps, nodes and tokens become what they were when it was saved; the
controllers then converge the running tasks to it. The images a snapshot
saved with --with-images carries go into the cluster registry first (within
--registry-max-size); the images the restored apps need that the cluster
lacks are listed.`,
		Example: "  berth snapshot restore backup.snap",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.snapshotRestore(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(save, restore)
	return cmd
}

func (e *env) snapshotSave(ctx context.Context, path string, force, withImages bool) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("%s exists; choose another file or pass --force to overwrite it", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	needs, err := e.client().SnapshotImages(ctx)
	if err != nil && !errors.Is(err, api.ErrNotFound) { // a manager older than image listing
		return fmt.Errorf("list the images of the apps: %w", err)
	}
	tmp := path + ".tmp"
	n, err := e.writeSnapshot(ctx, tmp, withImages)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("move the snapshot into place: %w", err)
	}
	fmt.Fprintf(e.stdout, "Saved a snapshot of the cluster state to %s (%d bytes)\n", path, n)
	e.printSavedImages(needs, withImages)
	return nil
}

// writeSnapshot streams the manager's snapshot into path and syncs it, so
// the rename that follows publishes a complete file.
func (e *env) writeSnapshot(ctx context.Context, path string, withImages bool) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("create the snapshot file: %w", err)
	}
	cw := &countingWriter{w: f}
	if withImages {
		err = e.client().SaveSnapshotWithImages(ctx, cw)
	} else {
		err = e.client().SaveSnapshot(ctx, cw)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write the snapshot file: %w", cerr)
	}
	if err == nil && cw.n == 0 {
		err = fmt.Errorf("the manager at %s sent an empty snapshot", e.global.addr)
	}
	return cw.n, err
}

func (e *env) snapshotRestore(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open the snapshot: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open the snapshot: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return fmt.Errorf("%s is not a snapshot file (empty or not a regular file)", path)
	}
	res, err := e.client().RestoreSnapshotImages(ctx, f)
	if err != nil {
		return fmt.Errorf("restore the snapshot %s: %w", path, err)
	}
	fmt.Fprintf(e.stdout, "Restored the cluster state from %s\n", path)
	e.printRestoredImages(res.Images)
	// A snapshot of another cluster brings that cluster's admin token.
	var ae *api.Error
	if _, err := e.client().Status(ctx); errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
		fmt.Fprintln(e.stderr, "The cluster now takes the admin token of the cluster the snapshot was saved from; use that token from now on.")
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
