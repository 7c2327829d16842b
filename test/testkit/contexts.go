package testkit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/credfile"
)

// Context is what a test needs of a context the CLI wrote: where the
// manager is, the CA that signed its certificate, and the admin token.
type Context struct {
	Addr  string `json:"addr"`
	CAPEM string `json:"ca_pem"`
	Token string `json:"token"`
}

// ReadContexts reads the contexts file of a CLI run with IsolatedEnv(home),
// found where that CLI finds it: the current context's name and every
// context by name.
func ReadContexts(home string) (string, map[string]Context, error) {
	dir, err := credfile.ConfigDir(credfile.EnvLookup(IsolatedEnv(home)))
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, "contexts.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var f struct {
		Current  string             `json:"current"`
		Contexts map[string]Context `json:"contexts"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return "", nil, fmt.Errorf("the contexts file %s: %w", path, err)
	}
	return f.Current, f.Contexts, nil
}
