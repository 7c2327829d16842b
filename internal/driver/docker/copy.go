package docker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/driver"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// CopyFrom writes a tar of p in the task's container (the engine's
// archive API: the container may be running or stopped).
func (d *Driver) CopyFrom(ctx context.Context, taskID, p string, limit int64, start func(), w io.Writer) error {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return fmt.Errorf("copy from task %s: %w", taskID, err)
	}
	res, err := d.cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: p})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%s: %w", p, driver.ErrPathNotFound)
	}
	if err != nil {
		return fmt.Errorf("copy %s from task %s: %w", p, taskID, err)
	}
	start()
	// The engine holds the container's lock until the archive is read
	// whole (Docker 20.10), which would stall every inspect of it behind
	// a slow client: read it into a file first.
	f, err := spool(res.Content, limit)
	res.Content.Close()
	if err != nil {
		return fmt.Errorf("copy %s from task %s: %w", p, taskID, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("copy %s from task %s: %w", p, taskID, err)
	}
	return nil
}

// spool reads r (at most limit bytes) into an unlinked temporary
// file and returns it at its start; the caller closes it.
func spool(r io.Reader, limit int64) (*os.File, error) {
	f, err := os.CreateTemp("", "berth-cp-*.tar")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name()) // gone with the last close, crash or not
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("the archive is larger than the limit of %d bytes: %w", limit, driver.ErrCopyTooLarge)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CopyTo extracts the tar r to p in the task's container, as docker cp
// does: into p when it is a directory, else as p, its parent a directory
// that exists.
func (d *Driver) CopyTo(ctx context.Context, taskID, p string, limit int64, r io.Reader) error {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return fmt.Errorf("copy to task %s: %w", taskID, err)
	}
	// The engine holds the container's lock while it reads the archive:
	// take it whole from the caller first, so a slow client stalls no one.
	f, err := spool(r, limit)
	if err != nil {
		return fmt.Errorf("copy to %s in task %s: %w", p, taskID, err)
	}
	defer f.Close()
	var content io.Reader = f
	dir, rename := p, ""
	st, err := d.cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: p})
	switch {
	case err == nil && st.Stat.Mode.IsDir():
	case err == nil || cerrdefs.IsNotFound(err):
		dir, rename = path.Dir(p), path.Base(p)
	default:
		return fmt.Errorf("copy to %s in task %s: %w", p, taskID, err)
	}
	if rename != "" {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(renameTop(pw, f, rename)) }()
		defer pr.Close()
		content = pr
	}
	_, err = d.cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: dir, Content: content})
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("directory %s: %w", dir, driver.ErrPathNotFound)
	}
	if err != nil {
		return fmt.Errorf("copy to %s in task %s: %w", p, taskID, err)
	}
	return nil
}

// renameTop copies the tar r to w with its one top entry (and everything
// under it) renamed to name.
func renameTop(w io.Writer, r io.Reader, name string) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	top := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		first, rest, _ := strings.Cut(strings.TrimPrefix(h.Name, "./"), "/")
		if top == "" {
			top = first
		}
		if first != top {
			return fmt.Errorf("the archive has more than one top entry (%s and %s)", top, first)
		}
		h.Name = name
		if rest != "" {
			h.Name = name + "/" + rest
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
