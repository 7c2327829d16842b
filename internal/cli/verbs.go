package cli

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/types"
	"github.com/spf13/cobra"
)

// Compose v2's per-service verbs that only read the app's stored spec
// (issue 19). The verbs that act on tasks (stop, kill, pause, top) need the
// agent and live elsewhere.

type portOptions struct{ protocol string }

func newPortCommand(e *env) *cobra.Command {
	var o portOptions
	cmd := &cobra.Command{
		Use:   "port SERVICE PRIVATE_PORT",
		Short: "Print the published address of a service's port",
		Long: `Print the address the cluster publishes a service's container port on, as
docker compose port does. An ingress port answers on every node, so the
address is HOST_IP:PORT with 0.0.0.0 when the file names no host IP.`,
		Example: "  berth port web 80\n  berth port dns 53 --protocol udp",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.port(cmd.Context(), args[0], args[1], o)
		},
	}
	cmd.Flags().StringVar(&o.protocol, "protocol", "tcp", "the port's protocol: tcp or udp")
	return cmd
}

func (e *env) port(ctx context.Context, service, private string, o portOptions) error {
	target, err := strconv.ParseUint(private, 10, 16)
	if err != nil || target == 0 {
		return fmt.Errorf("invalid port %q: give the container port as a number from 1 to 65535", private)
	}
	if o.protocol != "tcp" && o.protocol != "udp" {
		return fmt.Errorf("invalid --protocol %q: use tcp or udp", o.protocol)
	}
	s, err := e.storedService(ctx, service)
	if err != nil {
		return err
	}
	for _, p := range s.Ports {
		if p.Target == uint16(target) && cmp.Or(p.Protocol, "tcp") == o.protocol && p.Published != 0 {
			fmt.Fprintf(e.stdout, "%s:%d\n", cmp.Or(p.HostIP, "0.0.0.0"), p.Published)
			return nil
		}
	}
	return fmt.Errorf("service %s publishes no port %d/%s; add it under ports in the Compose file", service, target, o.protocol)
}

// storedApp is the app as the cluster runs it (not as the file on disk
// says it now), so port and images answer for what runs.
func (e *env) storedApp(ctx context.Context) (*types.App, error) {
	name, err := e.appName(ctx)
	if err != nil {
		return nil, err
	}
	app, err := e.client().GetApp(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read app %s: %w", name, err)
	}
	return app, nil
}

// storedAppWith is storedApp, refusing a service name it does not have.
func (e *env) storedAppWith(ctx context.Context, services []string) (*types.App, error) {
	app, err := e.storedApp(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range services {
		if app.Service(s) == nil {
			return nil, noServiceError(app.Name, s)
		}
	}
	return app, nil
}

// storedService is one service of storedApp.
func (e *env) storedService(ctx context.Context, service string) (*types.Service, error) {
	app, err := e.storedApp(ctx)
	if err != nil {
		return nil, err
	}
	s := app.Service(service)
	if s == nil {
		return nil, noServiceError(app.Name, service)
	}
	return s, nil
}

func noServiceError(app, service string) error {
	return fmt.Errorf("app %s has no service %s; berth ps lists its services", app, service)
}

func newImagesCommand(e *env) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images [SERVICE...]",
		Short: "List the images the app's tasks run",
		Long: `List the images the app's tasks run, one line per task, as docker compose
images lists one per container. The columns are the task (CONTAINER), the
image's repository and tag as the Compose file names it, and where the nodes
pull it from (the cluster registry's copy, for an image up pushed).`,
		Example: "  berth images\n  berth images web -q",
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.listImages(cmd.Context(), args, quiet)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image references, one per line")
	return cmd
}

func (e *env) listImages(ctx context.Context, services []string, quiet bool) error {
	app, err := e.storedAppWith(ctx, services)
	if err != nil {
		return err
	}
	all, _, err := e.client().ListTasks(ctx, api.TaskQuery{App: app.Name})
	if err != nil {
		return fmt.Errorf("list the tasks of app %s: %w", app.Name, err)
	}
	tasks := currentTasks(all) // the tasks ps shows
	slices.SortFunc(tasks, func(a, b *types.Task) int { return cmp.Compare(a.Name(), b.Name()) })
	rows := imageSummaries(app, tasks, services)
	if e.structured() && !quiet {
		return e.render(rows)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 3, ' ', 0)
	if !quiet {
		fmt.Fprintln(w, "CONTAINER\tREPOSITORY\tTAG\tPULLED FROM")
	}
	seen := map[string]bool{}
	for _, r := range rows {
		if quiet {
			if !seen[r.Image] {
				seen[r.Image] = true
				fmt.Fprintln(w, r.Image)
			}
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.ContainerName, r.Repository, r.Tag, r.PulledFrom)
	}
	return w.Flush()
}

// splitImageRef splits "repo[:tag][@digest]" as docker prints it: the tag
// is "latest" when none is given; a colon in a registry's host:port is not a
// tag.
func splitImageRef(ref string) (repo, tag string) {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}
