package driver

import (
	"context"
	"errors"
)

// Control is what a driver offers for the one-shot actions a user takes on
// a running task: berth kill, pause, unpause and top. It is apart from
// Driver so that a driver without it (a test fake, a simulated node) still
// runs tasks; the agent answers such a request with a refusal naming the
// driver.
//
// None of these change what the manager wants: a killed task's exit is
// reported as any exit, and the restart policy applies; a paused task stays
// running (and, on the docker driver, paused across agent restarts, as the
// engine keeps it so).
type Control interface {
	// Kill sends signal ("" : SIGKILL) to the task's process once.
	Kill(ctx context.Context, taskID, signal string) error
	// Pause freezes the task's processes; Unpause thaws them.
	Pause(ctx context.Context, taskID string) error
	Unpause(ctx context.Context, taskID string) error
	// Top lists the task's processes.
	Top(ctx context.Context, taskID string) (*Processes, error)
}

// ErrNotRunning is returned (wrapped) by Control's methods for a task that
// is not running.
var ErrNotRunning = errors.New("task is not running")

// Processes is a table of a task's processes, as `docker top` prints it.
type Processes struct {
	Titles []string   `json:"titles"`
	Rows   [][]string `json:"rows"`
}
