// Package compose turns Compose files into berth's App spec.
//
// compose-go does the Compose part, exactly as `docker compose` does it:
// file discovery (COMPOSE_FILE, compose.yaml and friends in the project
// directory or its parents, the override file), .env and --env-file,
// interpolation, env_file, extends, the merge of several -f files, profiles
// (--profile or COMPOSE_PROFILES), schema validation, and the project name
// (-p, then COMPOSE_PROJECT_NAME, then `name:`, then the project
// directory's name, normalized). This package then converts the resolved
// project to a *types.App.
//
// The caller gets three things back and must use them in this order:
//
//  1. An error: the files are invalid, or ask for something berth cannot do
//     at all (a published port range for one target, an external secret,
//     a global service with replicas). It names the file or key path.
//
//  2. Warnings: every key set in the files that berth does not honour yet
//     (logging, devices, ulimits, ...). Show each one to the
//     user; the App is still deployable without them.
//
//  3. The App: secret and config content already read (at most
//     types.MaxSecretSize each), bind sources and build contexts absolute,
//     services sorted by name. Send it as it is; the manager sets versions.
//
//     app, warnings, err := compose.Load(ctx, compose.Options{Files: files})
//     if err != nil {
//     return err
//     }
//     for _, w := range warnings {
//     fmt.Fprintln(stderr, "warning:", w)
//     }
//     // PUT /v1/apps/{app.Name}
//
// Render prints an App as YAML for `berth config`, with secret and config
// content replaced by its size.
//
// # Which keys are honoured
//
// The list lives in one table, honoured in warnings.go. Load marshals the
// whole loaded project to a generic tree and reports any non-empty key not
// in the table, so a key berth does not read can never be dropped in
// silence, including keys that future compose-go versions add. Extension
// keys (x-*) are the user's own and are never reported; x-berth-driver on
// a service chooses the driver ("docker", the default, or "exec").
//
// # Defaults that differ from Compose
//
// With neither restart nor deploy.restart_policy, a service restarts
// on-failure: a crashed task comes back, a one-shot task that exits 0 is
// done. deploy.restart_policy wins over restart when both are given, and
// its condition defaults to "any", as in Swarm. A service with build and no
// image gets the image name "<project>-<service>", as Compose v2 names it.
package compose
