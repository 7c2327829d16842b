package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/types"
)

// A snapshot is a stream of JSON records: a header, then one record per
// object. Records name their table so that new tables can be added without
// breaking old snapshots.
const snapshotFormat = "berth-state-v1"

type snapshotHeader struct {
	Format string `json:"format"`
}

type snapshotRecord struct {
	App        *types.App        `json:"app,omitempty"`
	Task       *types.Task       `json:"task,omitempty"`
	Node       *types.Node       `json:"node,omitempty"`
	Cluster    *types.Cluster    `json:"cluster,omitempty"`
	Pin        *types.VolumePin  `json:"volume_pin,omitempty"`
	Machine    *types.Machine    `json:"machine,omitempty"`
	Image      *types.Image      `json:"image,omitempty"`
	NetPool    *NetPool          `json:"net_pool,omitempty"`
	Deployment *types.Deployment `json:"deployment,omitempty"`
	Index      *indexEntry       `json:"index,omitempty"`

	Network *types.ClusterNetwork `json:"network,omitempty"`        // apply_network.go
	Removal *types.VolumeRemoval  `json:"volume_removal,omitempty"` // apply_volume_rm.go
}

// snapshot is a point-in-time view of the store being persisted.
type snapshot struct {
	txn *memdb.Txn
}

// Persist streams the snapshot into sink, and cancels the sink on failure.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.write(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist state snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

func (s *snapshot) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat}); err != nil {
		return err
	}
	// Every table, then the index table, so a new table cannot be left out.
	for _, table := range append(slices.Clone(allTables), tableIndex) {
		it, err := s.txn.Get(table, "id")
		if err != nil {
			return err
		}
		for obj := it.Next(); obj != nil; obj = it.Next() {
			if err := enc.Encode(recordOf(obj)); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

func recordOf(obj any) snapshotRecord {
	switch o := obj.(type) {
	case *types.App:
		return snapshotRecord{App: o}
	case *types.Task:
		return snapshotRecord{Task: o}
	case *types.Node:
		return snapshotRecord{Node: o}
	case *types.Cluster:
		return snapshotRecord{Cluster: o}
	case *types.VolumePin:
		return snapshotRecord{Pin: o}
	case *types.Machine:
		return snapshotRecord{Machine: o}
	case *types.Image:
		return snapshotRecord{Image: o}
	case *NetPool:
		return snapshotRecord{NetPool: o}
	case *types.Deployment:
		return snapshotRecord{Deployment: o}
	case *types.ClusterNetwork:
		return snapshotRecord{Network: o}
	case *types.VolumeRemoval:
		return snapshotRecord{Removal: o}
	case *indexEntry:
		return snapshotRecord{Index: o}
	}
	panic(fmt.Sprintf("state: snapshot of unknown object %T", obj))
}

// readSnapshot builds a new database from a stream written by Persist.
func readSnapshot(r io.Reader) (*memdb.MemDB, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if h.Format != snapshotFormat {
		return nil, fmt.Errorf("unknown snapshot format %q; is this manager older than the cluster?", h.Format)
	}
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, err
	}
	txn := db.Txn(true)
	defer txn.Abort()
	for {
		var rec snapshotRecord
		err := dec.Decode(&rec)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read record: %w", err)
		}
		if err := insertRecord(txn, rec); err != nil {
			return nil, err
		}
	}
	txn.Commit()
	// A snapshot of an older store may lack some tables' entries.
	if err := seedIndexes(db); err != nil {
		return nil, err
	}
	return db, nil
}

func insertRecord(txn *memdb.Txn, rec snapshotRecord) error {
	switch {
	case rec.App != nil:
		return txn.Insert(TableApps, rec.App)
	case rec.Task != nil:
		return txn.Insert(TableTasks, rec.Task)
	case rec.Node != nil:
		return txn.Insert(TableNodes, rec.Node)
	case rec.Cluster != nil:
		return txn.Insert(TableCluster, rec.Cluster)
	case rec.Pin != nil:
		return txn.Insert(TableVolumePins, rec.Pin)
	case rec.Machine != nil:
		return txn.Insert(TableMachines, rec.Machine)
	case rec.Image != nil:
		return txn.Insert(TableImages, rec.Image)
	case rec.NetPool != nil:
		return txn.Insert(TableNetPool, rec.NetPool)
	case rec.Deployment != nil:
		return txn.Insert(TableDeployments, rec.Deployment)
	case rec.Network != nil:
		return txn.Insert(TableNetworks, rec.Network)
	case rec.Removal != nil:
		return txn.Insert(TableVolumeRemovals, rec.Removal)
	case rec.Index != nil:
		return txn.Insert(tableIndex, rec.Index)
	}
	return nil // a record of a table this version does not know
}
