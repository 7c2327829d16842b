package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/internal/compose"
	"github.com/berth-dev/berth/internal/types"
)

// projectLoader turns Compose files into an App.
type projectLoader interface {
	Load(ctx context.Context, o compose.Options) (*types.App, []compose.Warning, error)
	Render(w io.Writer, app *types.App) error
	// Disabled names the services the active profiles leave out.
	Disabled(ctx context.Context, o compose.Options) ([]string, error)
}

// composeLoader is the projectLoader of internal/compose.
type composeLoader struct{}

func (composeLoader) Load(ctx context.Context, o compose.Options) (*types.App, []compose.Warning, error) {
	return compose.Load(ctx, o)
}

func (composeLoader) Render(w io.Writer, app *types.App) error { return compose.Render(w, app) }

func (composeLoader) Disabled(ctx context.Context, o compose.Options) ([]string, error) {
	return compose.DisabledServices(ctx, o)
}

// loadApp loads the Compose project the global flags describe and prints
// every warning (keys berth does not honour) on stderr, so none is silent.
// Notes (berth's defaults that differ from Compose's) are for config.
func (e *env) loadApp(ctx context.Context) (*types.App, error) {
	app, _, err := e.loadAppNotes(ctx)
	return app, err
}

// loadAppNotes is loadApp that also returns the notes.
func (e *env) loadAppNotes(ctx context.Context) (*types.App, []compose.Warning, error) {
	app, warnings, err := e.project.Load(ctx, e.composeOptions())
	var notes []compose.Warning
	for _, w := range warnings {
		if w.Note {
			notes = append(notes, w)
			continue
		}
		fmt.Fprintf(e.stderr, "warning: %s: %s\n", w.Path, w.Message)
	}
	if err != nil {
		return nil, nil, err
	}
	return app, notes, nil
}

// composeOptions are the global flags' choice of Compose files.
func (e *env) composeOptions() compose.Options {
	g := &e.global
	return compose.Options{
		Files:       g.files,
		ProjectName: g.project,
		WorkDir:     g.projectDir,
		Profiles:    g.profiles,
		EnvFiles:    g.envFiles,
		Environ:     e.environ(),
	}
}

// printNotes prints the notes, the services that share a message on one
// line: "note: services web, db: restart not set: ...".
func (e *env) printNotes(notes []compose.Warning) {
	var order []string
	keys := map[string][]string{}
	for _, n := range notes {
		if _, seen := keys[n.Message]; !seen {
			order = append(order, n.Message)
		}
		keys[n.Message] = append(keys[n.Message], n.Path)
	}
	for _, msg := range order {
		fmt.Fprintf(e.stderr, "note: %s: %s\n", strings.Join(keys[msg], ", "), msg)
	}
}

// appName is the project name for commands that only need the name: -p when
// given (no Compose file needed, as with docker compose), else the name the
// Compose file yields.
func (e *env) appName(ctx context.Context) (string, error) {
	if e.global.project != "" {
		return e.global.project, nil
	}
	app, err := e.loadApp(ctx)
	if err != nil {
		return "", err
	}
	return app.Name, nil
}

// disabledServices names the services of the project that the active
// profiles leave out.
func (e *env) disabledServices(ctx context.Context) ([]string, error) {
	g := &e.global
	return e.project.Disabled(ctx, compose.Options{
		Files: g.files, ProjectName: g.project, WorkDir: g.projectDir,
		Profiles: g.profiles, EnvFiles: g.envFiles, Environ: e.environ(),
	})
}
