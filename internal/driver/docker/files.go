package docker

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

// taskFiles writes the secret and config files of tasks. Secrets go only to
// a tmpfs; configs, which are not secret, go under DataDir.
type taskFiles struct {
	log         *slog.Logger
	secretsRoot string
	configsRoot string

	mu        sync.Mutex
	tmpfsErr  error // why secretsRoot is not usable; nil once it is
	tmpfsDone bool
}

func newTaskFiles(cfg Config, log *slog.Logger) (*taskFiles, error) {
	f := &taskFiles{log: log, configsRoot: filepath.Join(cfg.DataDir, "configs")}
	switch {
	case cfg.SecretsDir != "":
		f.secretsRoot = cfg.SecretsDir
	case isTmpfs(cfg.DataDir):
		f.secretsRoot = filepath.Join(cfg.DataDir, "secrets")
	default:
		f.secretsRoot = defaultSecretsDir(cfg.NodeID)
	}
	if err := os.MkdirAll(f.configsRoot, 0o700); err != nil {
		return nil, fmt.Errorf("docker driver: create config directory: %w", err)
	}
	return f, nil
}

// secretsReady makes sure secretsRoot is a tmpfs, mounting one if it must.
// It runs on the first task with secrets, so a node that never uses secrets
// needs no mount (and no root).
func (f *taskFiles) secretsReady() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tmpfsDone {
		return f.tmpfsErr
	}
	f.tmpfsDone = true
	if err := os.MkdirAll(f.secretsRoot, 0o700); err != nil {
		f.tmpfsErr = fmt.Errorf("create secrets directory %s: %w", f.secretsRoot, err)
		return f.tmpfsErr
	}
	if isTmpfs(f.secretsRoot) {
		return nil
	}
	if err := mountTmpfs(f.secretsRoot); err != nil {
		f.tmpfsErr = fmt.Errorf("secrets need a tmpfs so they never reach disk, and mounting one at %s failed (run the agent as root or give it a DataDir on tmpfs): %w", f.secretsRoot, err)
		return f.tmpfsErr
	}
	f.log.Info("mounted tmpfs for secrets", "dir", f.secretsRoot)
	return nil
}

// write writes a task's secret and config files and returns their mounts.
func (f *taskFiles) write(cfg *driver.TaskConfig) ([]fileMount, error) {
	s, id := cfg.Service, cfg.Task.ID
	var out []fileMount
	if len(s.Secrets) > 0 {
		if err := f.secretsReady(); err != nil {
			return nil, err
		}
		m, err := writeRefs(filepath.Join(f.secretsRoot, id), "secret", s.Secrets, cfg.Secrets)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	if len(s.Configs) > 0 {
		m, err := writeRefs(filepath.Join(f.configsRoot, id), "config", s.Configs, cfg.Configs)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

// removeSecrets deletes a task's secret files once its container has
// stopped: berth never starts a stopped container again (a restart is a new
// task), and a stopped task may stay listed for long (history, a scale to
// 0) while its container is kept for its logs. Configs, not secret, stay
// until Remove.
func (f *taskFiles) removeSecrets(taskID string) error {
	return removeUnder(taskID, "secret files", f.secretsRoot)
}

// remove deletes a task's files; nothing there is not an error.
func (f *taskFiles) remove(taskID string) error {
	return removeUnder(taskID, "files", f.secretsRoot, f.configsRoot)
}

// removeUnder deletes the task's directory under each root.
func removeUnder(taskID, what string, roots ...string) error {
	if taskID == "" || strings.ContainsAny(taskID, `/\`) {
		return fmt.Errorf("invalid task ID %q", taskID)
	}
	for _, root := range roots {
		if err := os.RemoveAll(filepath.Join(root, taskID)); err != nil {
			return fmt.Errorf("remove %s of task %s: %w", what, taskID, err)
		}
	}
	return nil
}

func writeRefs(dir, kind string, refs []types.FileRef, items map[string]*types.Secret) ([]fileMount, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s directory: %w", kind, err)
	}
	out := make([]fileMount, 0, len(refs))
	for i, ref := range refs {
		item := items[ref.Source]
		if item == nil {
			return nil, fmt.Errorf("%s %q is not defined in the app", kind, ref.Source)
		}
		target := ref.Target
		if target == "" {
			target = defaultTarget(kind, ref.Source)
		}
		host := filepath.Join(dir, strconv.Itoa(i)+"-"+filepath.Base(ref.Source))
		if err := writeFile(host, item.Data, ref); err != nil {
			return nil, fmt.Errorf("write %s %q: %w", kind, ref.Source, err)
		}
		out = append(out, fileMount{host: host, target: target})
	}
	return out, nil
}

// defaultTarget is where Compose puts a secret or config with no target.
func defaultTarget(kind, source string) string {
	if kind == "secret" {
		return "/run/secrets/" + source
	}
	return "/" + source
}

func writeFile(path string, data []byte, ref types.FileRef) error {
	mode := os.FileMode(ref.Mode)
	if mode == 0 {
		mode = 0o444
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	uid, gid := -1, -1
	var err error
	if ref.UID != "" {
		if uid, err = strconv.Atoi(ref.UID); err != nil {
			return fmt.Errorf("uid %q is not a number", ref.UID)
		}
	}
	if ref.GID != "" {
		if gid, err = strconv.Atoi(ref.GID); err != nil {
			return fmt.Errorf("gid %q is not a number", ref.GID)
		}
	}
	if uid >= 0 || gid >= 0 {
		if err := os.Lchown(path, uid, gid); err != nil {
			return err
		}
	}
	// Chmod after writing: WriteFile's mode is masked by the umask.
	return os.Chmod(path, mode)
}
