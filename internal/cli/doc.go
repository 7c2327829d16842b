// Package cli is berth's command line: the cobra command tree, its output
// (tables, JSON, progress) and the rules by which `up` and `scale` decide a
// deploy has converged or failed. It talks to managers only through the api
// package, and runs a manager or an agent in-process for `berth server` and
// `berth agent`.
//
// main calls Run and exits with what it returns; nothing else:
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
//	stop()
//	os.Exit(code)
//
// Run builds the command tree anew on every call, and no flag is bound to a
// package variable, so tests run commands in-process, one tree per call.
// Every outside collaborator a command uses (the Compose loader, the image
// builder, the clock, the environment, how a local cluster is started) sits
// in an env value; tests build one with fakes. Commands write results to
// stdout and everything else (warnings, build output) to stderr; a failed
// command prints one line, "error: ...", and Run returns 1.
//
// One file per command (up.go, ps.go, ...). Whether a service is done or
// failed is the controller's verdict (types.Service.Status), never decided
// here; evaluate (converge.go) reads it beside the tasks' counts, and
// followDeploy (follow.go) feeds it blocking task queries and stops on done,
// failed (showing the failed task's last log lines), stalled for a few
// seconds (only unplaceable tasks left), or timeout.
//
// Which manager: --addr, else BERTH_ADDR, else the current context (its
// address, CA, and admin token or client certificate, from contexts.json in
// the user's config directory; see contextstore.go), else the default
// address. globalOptions.resolveAddr applies this once per command, before
// it runs; commands that run or stop a local process skip contexts.
//
// The embedded default: when none of those names a manager and none
// answers at the default address, `up` starts `berth server --dev`
// detached, with its data and log in ~/.local/state/berth/local, and goes on.
package cli
