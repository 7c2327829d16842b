package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/driver"
)

// handleAttach connects berth run to its one-off's own process, framed
// both ways as an exec (serveDuplex): the output from the start, stdin
// when the task keeps it open, and the exit code last.
func (a *Agent) handleAttach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var rows, cols uint16
	if v := r.URL.Query().Get("size"); v != "" {
		var err error
		if rows, cols, err = api.ParseResize([]byte(v)); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("size: %q is not ROWSxCOLS", v))
			return
		}
	}
	a.serveDuplex(w, r, id, "an attach", func(d driver.Driver, s driver.ExecStreams) (int, error) {
		if at, ok := d.(driver.Attacher); ok {
			return at.Attach(r.Context(), id, rows, cols, s)
		}
		return followToExit(r.Context(), d, id, s)
	})
}

// exitPoll is how often followToExit asks a driver whether a task whose
// output ended has exited.
const exitPoll = 100 * time.Millisecond

// followToExit is an attach for a driver that has none: the task's log,
// followed to its end, then its exit code.
func followToExit(ctx context.Context, d driver.Driver, id string, s driver.ExecStreams) (int, error) {
	if err := d.Logs(ctx, id, driver.LogOptions{Follow: true}, s.Stdout); err != nil {
		return 0, err
	}
	for {
		st, err := d.Inspect(ctx, id)
		if err != nil {
			return 0, err
		}
		if st.State == driver.StateExited {
			return st.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(exitPoll):
		}
	}
}
