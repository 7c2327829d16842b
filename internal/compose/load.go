package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	ctypes "github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/types"
)

// Options say which Compose files to load and how, mirroring the flags of
// `docker compose`.
type Options struct {
	// Files are the -f files, in order. Empty: COMPOSE_FILE, else the default
	// files (compose.yaml, compose.yml, docker-compose.yml,
	// docker-compose.yaml, plus an override file) in WorkDir or its parents.
	Files []string
	// ProjectName is -p. Empty: `name:` in the files, then
	// COMPOSE_PROJECT_NAME, then the project directory's name, normalized.
	ProjectName string
	// WorkDir is --project-directory. Empty: the directory of the first file
	// (or the current directory when no file is given).
	WorkDir string
	// Profiles are the --profile values. Empty: COMPOSE_PROFILES.
	Profiles []string
	// EnvFiles are the --env-file files. Empty: .env in the project directory.
	EnvFiles []string
	// Environ is the environment as KEY=VALUE; nil means os.Environ().
	Environ []string
}

// ErrNoComposeFile is returned when no file was given and none was found.
var ErrNoComposeFile = errors.New("no compose file found")

// Load reads the Compose files o names and converts them to an App. It
// returns one Warning for every key set in the files that berth does not
// honour. The App has no version or indexes: the manager sets those.
func Load(ctx context.Context, o Options) (*types.App, []Warning, error) {
	project, problems, err := loadProject(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	warnings, err := unhonouredKeys(project)
	if err != nil {
		return nil, nil, err
	}
	// Consistency and conversion both run, so a file's mistakes come back
	// in one round; the two may see one mistake, sortErrors keeps one.
	app, errs := convertProject(project)
	if all := sortErrors(append(problems, errs...)); len(all) > 0 {
		return nil, nil, Errors(all)
	}
	warnings = append(warnings, driverWarnings(app)...)
	sort.SliceStable(warnings, func(i, j int) bool { return warnings[i].Path < warnings[j].Path })
	return app, append(warnings, restartNotes(project)...), nil
}

// loadProject runs compose-go: file discovery, .env, interpolation, extends,
// merge of several files, profiles, validation and normalization. It
// returns the project and the problems checkConsistency finds in it, or an
// error when there is no project (every schema error in the files).
func loadProject(ctx context.Context, o Options) (*ctypes.Project, []error, error) {
	po, err := projectOptions(o)
	if err != nil {
		return nil, nil, err
	}
	if len(po.ConfigPaths) == 0 {
		dir, _ := po.GetWorkingDir()
		return nil, nil, fmt.Errorf("%w in %s or its parents: name one with -f", ErrNoComposeFile, dir)
	}
	project, err := loadWithoutPanic(ctx, po)
	if err != nil {
		if all := schemaErrors(ctx, o); len(all) > 0 {
			return nil, nil, fmt.Errorf("load compose files %s: %w", strings.Join(po.ConfigPaths, ", "), Errors(all))
		}
		return nil, nil, err
	}
	return project, checkConsistency(project), nil
}

// projectOptions are compose-go's options for o, plus extra.
func projectOptions(o Options, extra ...cli.ProjectOptionsFn) (*cli.ProjectOptions, error) {
	environ := o.Environ
	if environ == nil {
		environ = os.Environ()
	}
	fns := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(o.WorkDir),
		cli.WithEnv(environ),
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(o.Profiles...),
		// berth checks consistency itself (consistency.go): exec services
		// need a command, not an image.
		cli.WithConsistency(false),
	}
	po, err := cli.NewProjectOptions(o.Files, append(fns, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("read compose options: %w", err)
	}
	if o.ProjectName != "" {
		if err := cli.WithName(o.ProjectName)(po); err != nil {
			return nil, fmt.Errorf("project name %q: %w", o.ProjectName, err)
		}
	}
	return po, nil
}

// loadWithoutPanic loads the project. compose-go asserts on shapes its
// schema should have ruled out; a malformed file must come back as an
// error, never crash the CLI.
func loadWithoutPanic(ctx context.Context, po *cli.ProjectOptions) (project *ctypes.Project, err error) {
	defer func() {
		if r := recover(); r != nil {
			project, err = nil, fmt.Errorf("load compose files %v: malformed file (%v)", po.ConfigPaths, r)
		}
	}()
	project, err = po.LoadProject(ctx)
	if errs := interpolationErrors(err); len(errs) > 0 {
		return nil, fmt.Errorf("load compose files %s: %w", strings.Join(po.ConfigPaths, ", "), Errors(errs))
	}
	if err != nil {
		return nil, fmt.Errorf("load compose files: %w", err)
	}
	return project, nil
}
