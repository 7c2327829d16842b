package docker

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/driver"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// CopyFrom writes a tar of p in the task's container (the engine's
// archive API: the container may be running or stopped).
func (d *Driver) CopyFrom(ctx context.Context, taskID, p string, w io.Writer) error {
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
	defer res.Content.Close()
	if _, err := io.Copy(w, res.Content); err != nil {
		return fmt.Errorf("copy %s from task %s: %w", p, taskID, err)
	}
	return nil
}

// CopyTo extracts the tar r to p in the task's container, as docker cp
// does: into p when it is a directory, else as p, its parent a directory
// that exists.
func (d *Driver) CopyTo(ctx context.Context, taskID, p string, r io.Reader) error {
	id, err := d.find(ctx, taskID)
	if err != nil {
		return fmt.Errorf("copy to task %s: %w", taskID, err)
	}
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
		go func() { pw.CloseWithError(renameTop(pw, r, rename)) }()
		defer pr.Close()
		r = pr
	}
	_, err = d.cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: dir, Content: r})
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
