package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// localTask is what the agent must remember of a task across restarts: the
// manager stops sending a service's spec once a newer version exists, so the
// stop settings of an old task live here.
type localTask struct {
	Driver  string        `json:"driver"`
	App     string        `json:"app"`
	Service string        `json:"service"`
	Grace   time.Duration `json:"grace"`
	Signal  string        `json:"signal,omitempty"`
	// Started is set before the driver is asked to start the task, so a
	// restarted agent never starts it a second time.
	Started bool `json:"started"`
}

var (
	bucketMeta  = []byte("meta")
	bucketTasks = []byte("tasks")
	keyNodeID   = []byte("node_id")
	keyManagers = []byte("managers")
)

// store is the agent's local state: DataDir/agent.db.
type store struct {
	db *bolt.DB
}

func openStore(dataDir string, volatile bool) (*store, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, "agent.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, NoSync: volatile})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: another agent is using this data dir; stop it or pick another --data-dir: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open agent state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketTasks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init agent state %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) Close() error { return s.db.Close() }

// NodeID returns the stored node ID, or "" before the first start.
func (s *store) NodeID() (string, error) {
	var id string
	err := s.db.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(keyNodeID))
		return nil
	})
	return id, err
}

func (s *store) SetNodeID(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyNodeID, []byte(id))
	})
}

// Tasks returns every remembered task by ID.
func (s *store) Tasks() (map[string]localTask, error) {
	out := map[string]localTask{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
			var lt localTask
			if err := json.Unmarshal(v, &lt); err != nil {
				return fmt.Errorf("decode local task %s: %w", k, err)
			}
			out[string(k)] = lt
			return nil
		})
	})
	return out, err
}

func (s *store) PutTask(id string, lt localTask) error {
	b, err := json.Marshal(lt)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).Put([]byte(id), b)
	})
}

func (s *store) DeleteTask(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).Delete([]byte(id))
	})
}

// Managers returns the managers' cluster addresses last learned from them.
func (s *store) Managers() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(keyManagers); b != nil {
			return json.Unmarshal(b, &out)
		}
		return nil
	})
	return out, err
}

// SetManagers keeps the managers' cluster addresses, so a restarted agent
// can reach the cluster even when the manager it joined through is gone.
func (s *store) SetManagers(addrs []string) error {
	b, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyManagers, b)
	})
}
