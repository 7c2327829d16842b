package machine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/atomicfile"
)

// Store keeps, on the machine that made them, the hosts' driver records
// (Host.Local) and one record per cluster of hosts, so a host can be
// stopped, entered and removed with no cluster left to ask. Its layout:
//
//	DIR/<cluster>/<host>.json   one Host (Local included; never a token)
//	DIR/<cluster>/_cluster.json the Cluster record ('_' is in no host name)
//
// Files are 0600 in 0700 directories: a record names the host's files and
// processes, which only its owner should learn.
type Store struct {
	dir string
}

// Cluster is what the store keeps of a cluster of hosts.
type Cluster struct {
	Name string `json:"name"`
	// Context is the berth context made for it ("" when none was).
	Context string `json:"context,omitempty"`
	// Subnet is the local driver's bridge subnet ("" when it chose).
	Subnet  string    `json:"subnet,omitempty"`
	Driver  string    `json:"driver"`
	Created time.Time `json:"created"`
}

const clusterFile = "_cluster.json"

// NewStore returns the store in dir.
func NewStore(dir string) *Store { return &Store{dir: dir} }

// DefaultStoreDir is $XDG_STATE_HOME/berth/machines, else
// ~/.local/state/berth/machines.
func DefaultStoreDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "berth", "machines"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("cannot find where to keep machine records: neither XDG_STATE_HOME nor HOME is set")
	}
	return filepath.Join(home, ".local", "state", "berth", "machines"), nil
}

// Dir is where the store keeps its files.
func (s *Store) Dir() string { return s.dir }

func (s *Store) hostPath(cluster, name string) (string, error) {
	if err := checkSegment("cluster", cluster); err != nil {
		return "", err
	}
	if err := checkSegment("machine", name); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, cluster, name+".json"), nil
}

// checkSegment refuses names that would leave the store's directory.
func checkSegment(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, "_") {
		return fmt.Errorf("%q is not a %s name", name, what)
	}
	return nil
}

// Reserve claims a host name in a cluster before the host is made, so two
// commands cannot make hosts of one name and a crash mid-create leaves a
// record that `machine rm -f` finds. It wraps ErrExists when taken.
func (s *Store) Reserve(h *Host) error {
	p, err := s.hostPath(h.Cluster, h.Name)
	if err != nil {
		return err
	}
	return writeRecord(p, h, "machine "+h.Name+" in cluster "+h.Cluster, true)
}

// Put writes a host's record, replacing the one of its name.
func (s *Store) Put(h *Host) error {
	p, err := s.hostPath(h.Cluster, h.Name)
	if err != nil {
		return err
	}
	return writeRecord(p, h, "", false)
}

func (s *Store) clusterPath(name string) (string, error) {
	if err := checkSegment("cluster", name); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, name, clusterFile), nil
}

// writeRecord writes v to p; exclusive first claims p and wraps ErrExists,
// naming what, when p exists.
func writeRecord(p string, v any, what string, exclusive bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the record %s: %w", p, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("create the directory of machine records: %w", err)
	}
	if exclusive {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", what, ErrExists)
		}
		if err != nil {
			return fmt.Errorf("write the record %s: %w", p, err)
		}
		f.Close()
	}
	return writeAtomic(p, append(b, '\n'))
}

// writeAtomic replaces p: a crash leaves the old file or the new one.
func writeAtomic(p string, b []byte) error {
	if err := atomicfile.Write(p, b, 0o600); err != nil {
		return fmt.Errorf("write the record %s: %w", p, err)
	}
	return nil
}

// Get reads a host's record; it wraps ErrNotFound when there is none.
func (s *Store) Get(cluster, name string) (*Host, error) {
	p, err := s.hostPath(cluster, name)
	if err != nil {
		return nil, err
	}
	var h Host
	if err := readJSON(p, &h); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("machine %s in cluster %s: %w", name, cluster, ErrNotFound)
		}
		return nil, err
	}
	return &h, nil
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the record %s is damaged (%v); fix or remove it", p, err)
	}
	return nil
}

// List returns a cluster's hosts, sorted by name.
func (s *Store) List(cluster string) ([]*Host, error) {
	if err := checkSegment("cluster", cluster); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(s.dir, cluster))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read machine records: %w", err)
	}
	var out []*Host
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".json") || n == clusterFile || strings.HasPrefix(n, ".") {
			continue
		}
		h, err := s.Get(cluster, strings.TrimSuffix(n, ".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes a host's record; a missing one is no error.
func (s *Store) Delete(cluster, name string) error {
	p, err := s.hostPath(cluster, name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the record of machine %s: %w", name, err)
	}
	return s.pruneDir(cluster)
}

// ReserveCluster records a new cluster; it wraps ErrExists when one of
// that name is recorded.
func (s *Store) ReserveCluster(c Cluster) error {
	p, err := s.clusterPath(c.Name)
	if err != nil {
		return err
	}
	return writeRecord(p, c, "cluster "+c.Name, true)
}

// PutCluster writes a cluster's record, replacing it.
func (s *Store) PutCluster(c Cluster) error {
	p, err := s.clusterPath(c.Name)
	if err != nil {
		return err
	}
	return writeRecord(p, c, "", false)
}

// GetCluster reads a cluster's record; it wraps ErrNotFound when there is
// none.
func (s *Store) GetCluster(name string) (*Cluster, error) {
	p, err := s.clusterPath(name)
	if err != nil {
		return nil, err
	}
	var c Cluster
	if err := readJSON(p, &c); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("cluster %s: %w", name, ErrNotFound)
		}
		return nil, err
	}
	return &c, nil
}

// Clusters lists the recorded clusters, sorted by name.
func (s *Store) Clusters() ([]*Cluster, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read machine records: %w", err)
	}
	var out []*Cluster
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := s.GetCluster(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // hosts made by `machine create` alone
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// DeleteCluster removes a cluster's record and, once no host record is
// left in it, its directory.
func (s *Store) DeleteCluster(name string) error {
	if err := checkSegment("cluster", name); err != nil {
		return err
	}
	dir := filepath.Join(s.dir, name)
	if err := os.Remove(filepath.Join(dir, clusterFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the record of cluster %s: %w", name, err)
	}
	return s.pruneDir(name)
}

// pruneDir removes a cluster's directory when it holds nothing.
func (s *Store) pruneDir(cluster string) error {
	err := os.Remove(filepath.Join(s.dir, cluster))
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) {
		return nil
	}
	return fmt.Errorf("remove the directory of cluster %s: %w", cluster, err)
}
