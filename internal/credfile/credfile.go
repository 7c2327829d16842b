// Package credfile keeps the admin token of a manager on this machine where
// the CLI of the same user finds it for that manager's address: one file
// per address in $XDG_CONFIG_HOME/berth/local (else ~/.config/berth/local),
// mode 0600 in a 0700 directory. `berth server --dev` (and so the local
// cluster `berth up` starts) writes it; the CLI reads it when it talks to
// that address over loopback. Test harnesses find it the same way.
package credfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// ConfigDir is berth's configuration directory: $XDG_CONFIG_HOME/berth,
// else ~/.config/berth. Contexts live there too.
func ConfigDir(getenv func(string) string) (string, error) {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("cannot find berth's configuration directory: neither XDG_CONFIG_HOME nor HOME is set")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "berth"), nil
}

// Path is the file of the manager listening on hostPort ("127.0.0.1:7700").
func Path(getenv func(string) string, hostPort string) (string, error) {
	dir, err := ConfigDir(getenv)
	if err != nil {
		return "", err
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, hostPort)
	return filepath.Join(dir, "local", name+".token"), nil
}

// Save writes the token for hostPort, atomically and readable by the user
// only (never a moment with looser permissions).
func Save(getenv func(string) string, hostPort, token string) error {
	path, err := Path(getenv, hostPort)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create the directory of the local credential: %w", err)
	}
	if err := atomicfile.Write(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the local credential %s: %w", path, err)
	}
	return nil
}

// Load reads the token for hostPort; "" when there is none.
func Load(getenv func(string) string, hostPort string) (string, error) {
	path, err := Path(getenv, hostPort)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the local credential: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// EnvLookup turns an environment ("KEY=value" lines, as exec.Cmd.Env) into
// a getenv, for a harness that finds the credential a process it started
// with that environment wrote.
func EnvLookup(env []string) func(string) string {
	return func(key string) string {
		val := ""
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				val = v // the last one wins, as for exec
			}
		}
		return val
	}
}

// Remove deletes the token for hostPort, if any.
func Remove(getenv func(string) string, hostPort string) error {
	path, err := Path(getenv, hostPort)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the stale local credential: %w", err)
	}
	return nil
}
