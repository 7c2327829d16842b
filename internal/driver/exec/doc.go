// Package execdriver runs each task as a plain host process: the service's
// entrypoint followed by its command, with its env, working directory and
// PATH from the agent. It serves services that set x-berth-driver: exec,
// the integration harness, and machines without Docker.
//
// Layout under DataDir/tasks/<task id>/:
//
//	state.json   pid, process start time, exit code once known
//	output.log   stdout and stderr of the process, merged
//
// Secret and config files go to Config.SecretsDir/<task id>/ (a tmpfs,
// /dev/shm/berth/<node> by default; a task with secrets fails to start when
// it is not a tmpfs), at their target paths made relative; the process finds
// them via $BERTH_SECRETS_DIR.
//
// Processes outlive the agent: each runs in its own process group and owns
// its log file, so killing the agent leaves it running. A new Driver on the
// same DataDir re-attaches to every task it finds in state.json; the start
// time read from /proc tells a live task from a reused pid. A process that
// is no longer the agent's child is watched by polling /proc, and when it
// ends its exit code is lost: Status reports -1 and says so in Error.
//
// Host processes reach services through the overlay's virtual addresses:
// with the overlay on, the agent puts BERTH_SERVICE_<NAME>_ADDR in the
// service's env (see agent.EnvServicePrefix), and this driver passes the env
// on as it is.
//
// What does not apply to host processes: ports and networks (the process
// binds its own ports), mounts, secrets at absolute targets (use
// $BERTH_SECRETS_DIR), resource limits, and log timestamps (the process
// writes its log directly so that it keeps working without the agent).
// Unhonoured lists the keys of a service it ignores; berth config and berth
// up warn about each.
//
// Stop sends the stop signal (default SIGTERM) to the whole process group,
// waits for the grace period, then sends SIGKILL. Healthchecks (CMD, or
// CMD-SHELL through /bin/sh -c) run in the agent, and health changes are
// delivered on Events like exits are.
package execdriver
