package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/berth-dev/berth/internal/atomicfile"
	"github.com/berth-dev/berth/internal/credfile"
	"github.com/berth-dev/berth/internal/types"
)

// clusterContext is how the CLI reaches one cluster: the manager's API
// address, the CA that signed its certificate, and the credential to show
// it. The PEM blobs are copied in at creation, so a context keeps working
// when the files it was made from move or go.
type clusterContext struct {
	Addr string `json:"addr"`
	// Fallbacks are other managers ("host:port", Addr's scheme) the CLI
	// turns to when Addr does not answer: a cluster whose first manager
	// died stays reachable. cluster create writes them.
	Fallbacks []string `json:"fallbacks,omitempty"`
	CAPEM     string   `json:"ca_pem,omitempty"`
	Token     string   `json:"token,omitempty"`
	CertPEM   string   `json:"cert_pem,omitempty"`
	KeyPEM    string   `json:"key_pem,omitempty"`
}

// credential names what the context shows the manager, for listings.
func (c *clusterContext) credential() string {
	switch {
	case c.Token != "":
		return "token"
	case c.CertPEM != "":
		return "certificate"
	}
	return "none"
}

// contextFile is contexts.json: every context by name and the current one.
type contextFile struct {
	Current  string                     `json:"current,omitempty"`
	Contexts map[string]*clusterContext `json:"contexts"`
}

// names returns the context names in order.
func (f *contextFile) names() []string {
	out := make([]string, 0, len(f.Contexts))
	for n := range f.Contexts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// defaultContextName stands for "no context": the address from --addr,
// BERTH_ADDR or the built-in default, without a credential.
const defaultContextName = "default"

var contextNameRE = types.NewBoundedRE(`^[A-Za-z0-9][A-Za-z0-9._-]*$`, 64) // see types.BoundedRE

func checkContextName(name string) error {
	if name == defaultContextName {
		return fmt.Errorf("context name %q is reserved (it means no context); pick another", name)
	}
	if !contextNameRE.MatchString(name) {
		return fmt.Errorf("invalid context name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// contextStore reads and writes contexts.json. The file may hold an admin
// token or a client key, so it is written 0600 in a 0700 directory.
type contextStore struct {
	path string
}

// contextStore returns the store in berth's configuration directory
// (credfile.ConfigDir: $XDG_CONFIG_HOME/berth, else ~/.config/berth), where
// the local credentials live too.
func (e *env) contextStore() (*contextStore, error) {
	dir, err := credfile.ConfigDir(e.getenv)
	if err != nil {
		return nil, err // it says which variables to set
	}
	return &contextStore{path: filepath.Join(dir, "contexts.json")}, nil
}

// load reads the file; a missing file is an empty store.
func (s *contextStore) load() (*contextFile, error) {
	f := &contextFile{Contexts: map[string]*clusterContext{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the contexts file: %w", err)
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("the contexts file %s is damaged (%v); fix or remove it", s.path, err)
	}
	if f.Contexts == nil {
		f.Contexts = map[string]*clusterContext{}
	}
	return f, nil
}

// save replaces the file atomically: a crash leaves the old file or the
// new one, never half of one, and never a moment with looser permissions.
func (s *contextStore) save(f *contextFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the contexts: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the directory of the contexts file: %w", err)
	}
	if err := atomicfile.Write(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the contexts file: %w", err)
	}
	return nil
}

// update loads the file, lets change modify it, and saves it.
func (s *contextStore) update(change func(*contextFile) error) error {
	f, err := s.load()
	if err != nil {
		return err
	}
	if err := change(f); err != nil {
		return err
	}
	return s.save(f)
}
