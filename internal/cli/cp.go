package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

// maxCopyEntries bounds the files one copy may extract here.
const maxCopyEntries = 100_000

// copyEnd is one side of berth cp: a path in a service's task, or here.
type copyEnd struct {
	service string // "" for a local path
	path    string
}

// parseCopyEnd reads "SERVICE:PATH" or a local path, as docker cp does: a
// colon before any slash names a service; "./a:b" is a local file.
func parseCopyEnd(s string) copyEnd {
	i := strings.IndexByte(s, ':')
	if i <= 0 || strings.Contains(s[:i], "/") || filepath.IsAbs(s) {
		return copyEnd{path: s}
	}
	return copyEnd{service: s[:i], path: s[i+1:]}
}

// parseCopyArgs checks that one side of a copy is in a task and the other
// here, and that the task's path is absolute.
func parseCopyArgs(src, dst string) (from, to copyEnd, err error) {
	from, to = parseCopyEnd(src), parseCopyEnd(dst)
	switch {
	case from.service != "" && to.service != "":
		return from, to, errors.New("berth cp copies between a task and this machine, not between two tasks; copy to a local file first")
	case from.service == "" && to.service == "":
		return from, to, errors.New("one side of berth cp must be SERVICE:PATH (a path in a service's task)")
	}
	remote := from
	if to.service != "" {
		remote = to
	}
	if !path.IsAbs(remote.path) {
		return from, to, fmt.Errorf("%s:%s: the path in the task must be absolute, as /app/%s", remote.service, remote.path, remote.path)
	}
	return from, to, nil
}

func newCpCommand(e *env) *cobra.Command {
	var index int
	cmd := &cobra.Command{
		Use:   "cp [--index N] SERVICE:PATH LOCAL | LOCAL SERVICE:PATH",
		Short: "Copy files or directories between a service's task and this machine",
		Long: `Copy a file or directory out of a service's running task, or into it, on
whichever node the task runs, as docker compose cp does: a tar stream through the
manager and the task's agent, at most 1 GiB. LOCAL "-" is a tar on stdout or
stdin. Tasks of the exec driver are host processes with no filesystem of their
own: copy on their node directly.`,
		Example: "  berth cp web:/etc/nginx/nginx.conf .\n  berth cp ./site web:/usr/share/nginx/html\n  berth cp --index 2 db:/var/log/db.log db2.log",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to, err := parseCopyArgs(args[0], args[1])
			if err != nil {
				return err
			}
			return e.cp(cmd.Context(), from, to, index)
		},
	}
	cmd.Flags().IntVar(&index, "index", 1, "which replica of the service (1 is the first)")
	return cmd
}

func (e *env) cp(ctx context.Context, from, to copyEnd, index int) error {
	remote := from
	if to.service != "" {
		remote = to
	}
	_, t, err := e.runningTask(ctx, remote.service, index)
	if err != nil {
		return err
	}
	c := e.client()
	if from.service != "" {
		tr, err := c.CopyFrom(ctx, t.ID, from.path)
		if err != nil {
			return fmt.Errorf("copy %s from %s: %w", from.path, t.Name(), err)
		}
		defer tr.Close()
		if to.path == "-" {
			_, err = io.Copy(e.stdout, io.LimitReader(tr, api.MaxCopyBytes))
		} else {
			err = extractTar(tr, to.path)
		}
		if err != nil {
			return fmt.Errorf("copy %s from %s to %s: %w", from.path, t.Name(), to.path, err)
		}
		return nil
	}
	body := e.stdin
	if from.path != "-" {
		if _, err := os.Lstat(from.path); err != nil {
			return fmt.Errorf("copy %s: %w", from.path, err)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(pw, from.path)) }()
		defer pr.Close()
		body = pr
	}
	if err := c.CopyTo(ctx, t.ID, to.path, body); err != nil {
		return fmt.Errorf("copy %s to %s in %s: %w", from.path, to.path, t.Name(), err)
	}
	return nil
}

// runningTask is the task --index names among a service's running ones,
// and the service as the cluster runs it.
func (e *env) runningTask(ctx context.Context, service string, index int) (*types.Service, *types.Task, error) {
	app, err := e.storedApp(ctx)
	if err != nil {
		return nil, nil, err
	}
	svc := app.Service(service)
	if svc == nil {
		return nil, nil, noServiceError(app.Name, service)
	}
	tasks, _, err := e.client().ListTasks(ctx, api.TaskQuery{App: app.Name, Service: service})
	if err != nil {
		return nil, nil, err
	}
	t, err := pickReplica(tasks, service, index)
	return svc, t, err
}

// writeTar writes src (a file, a directory with everything under it, or a
// symlink, not followed) as a tar whose top entry is src's last element.
func writeTar(w io.Writer, src string) error {
	tw := tar.NewWriter(w)
	base := filepath.Base(filepath.Clean(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		h.Name = path.Join(base, filepath.ToSlash(rel))
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// extractTar writes the tar r here as docker cp does: into dst when it is
// a directory, else as dst (the archive's top entry renamed). Every entry
// stays under the directory it is extracted in (os.Root: no "..", no
// symlink leads out), and the whole is bounded in bytes and entries.
func extractTar(r io.Reader, dst string) error {
	dir, rename := dst, ""
	if st, err := os.Stat(dst); err != nil || !st.IsDir() {
		dir, rename = filepath.Dir(dst), filepath.Base(dst)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return errors.New("the task sent an empty archive")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the archive: %w", err)
		}
		if n >= maxCopyEntries {
			return fmt.Errorf("the archive has more than %d entries", maxCopyEntries)
		}
		name := renamed(h.Name, rename)
		if h.Typeflag == tar.TypeLink {
			h.Linkname = renamed(h.Linkname, rename)
		}
		if total += h.Size; total > api.MaxCopyBytes {
			return fmt.Errorf("the archive is larger than %d bytes", int64(api.MaxCopyBytes))
		}
		if err := extractEntry(root, name, h, tr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
}

// renamed is a tar entry's name relative to where it is extracted, its top
// element replaced by top when top is not "".
func renamed(name, top string) string {
	name = strings.TrimLeft(path.Clean("/"+name), "/")
	if top == "" {
		return name
	}
	_, rest, _ := strings.Cut(name, "/")
	return path.Join(top, rest)
}

// extractEntry writes one tar entry under root.
func extractEntry(root *os.Root, name string, h *tar.Header, r io.Reader) error {
	mode := fs.FileMode(h.Mode).Perm()
	switch h.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(name, 0o755); err != nil {
			return err
		}
		return root.Chmod(name, mode|0o700)
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		_ = root.Remove(name)
		return root.Symlink(h.Linkname, name)
	case tar.TypeLink:
		_ = root.Remove(name)
		return root.Link(h.Linkname, name)
	}
	return nil // devices and fifos: not a copy's business
}
