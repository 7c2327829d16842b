package execdriver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/types"
)

// record is what survives the agent: enough to find the process again, to
// tell it from a process that reused its pid, and to run its healthcheck.
type record struct {
	TaskID    string `json:"task_id"`
	App       string `json:"app"`
	Service   string `json:"service"`
	NodeID    string `json:"node_id"`
	PID       int    `json:"pid"`
	ProcStart uint64 `json:"proc_start"` // start time in clock ticks from /proc/<pid>/stat

	StartedAt  time.Time `json:"started_at"`
	Exited     bool      `json:"exited"`
	ExitCode   int       `json:"exit_code"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"`

	Healthcheck *types.Healthcheck `json:"healthcheck,omitempty"`
	Env         []string           `json:"env,omitempty"`
	Dir         string             `json:"dir,omitempty"`
}

const stateFile = "state.json"

// save writes the record atomically, so a crash mid-write leaves the old one.
func (r *record) save(dir string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write task state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("write task state: %w", err)
	}
	return nil
}

func loadRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read task state: %w", err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read task state %s: %w", dir, err)
	}
	return &r, nil
}
