package raftnode

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// A server whose data directory cannot take writes can neither append
// entries nor snapshot, yet raft keeps it a voter, may keep it the leader,
// and its reads look fresh. Two signals tell it: the result of every write
// to the log and stable store (liveWAL), and a probe that checks the
// free space and writes and syncs a small file in the directory every
// probeInterval. The probe also sees the disk fill before a write fails
// (raft-wal preallocates its segments, so appends go on until the next
// segment is due) and sees it recover, so the server needs no restart.
const (
	probeInterval = time.Second
	probeBytes    = 4096
	probeFile     = ".probe"
	// lowSpace: below this much free space the directory counts as full;
	// the next log segment or snapshot would fail anyway.
	lowSpace = 8 << 20
	// segmentSize is the size of raft-wal's log segments (its default),
	// each preallocated whole when the log starts it.
	segmentSize = 64 << 20
	// JoinSpace is the free space a manager needs to join a cluster: the
	// log's first segment and the reserve twice over.
	JoinSpace = segmentSize + 2*lowSpace
	// transferRetry spaces attempts to hand leadership away.
	transferRetry = 5 * time.Second
)

// DiskHealth is whether this server can write its data directory.
type DiskHealth struct {
	Healthy bool
	// Problem says what failed, when not Healthy.
	Problem string
	// Since is when the server entered this state.
	Since time.Time
}

// diskHealth tracks the two signals and, while watching, hands leadership
// away when this server leads without a writable disk.
type diskHealth struct {
	dir string
	log hclog.Logger

	// reopen, when set, reopens the log (see liveWAL).
	reopen func() error

	mu       sync.Mutex
	storeErr error // the last write to the log or stable store, if it failed
	probeErr error // the last probe, if it failed
	// stuck: the log refuses appends until it is reopened.
	stuck bool
	state DiskHealth

	stop chan struct{}
	done chan struct{}
}

func newDiskHealth(dir string, log hclog.Logger) *diskHealth {
	return &diskHealth{dir: dir, log: log, state: DiskHealth{Healthy: true, Since: time.Now()}}
}

// Health returns the current state.
func (h *diskHealth) Health() DiskHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

// recordStore takes the result of a write to the log or stable store and
// passes it on; a success clears an earlier failure.
func (h *diskHealth) recordStore(err error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil || h.storeErr != nil {
		h.storeErr = err
		// A write that succeeds shows the log works again.
		h.stuck = err != nil && (h.stuck || stuck(err))
		h.updateLocked()
	}
	return err
}

func (h *diskHealth) recordProbe(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.probeErr = err
	h.updateLocked()
}

func (h *diskHealth) updateLocked() {
	problem := ""
	switch {
	case h.stuck:
		problem = fmt.Sprintf("writing the Raft log failed: %v; the log's next segment did not fit, and the log is reopened once %s has %s free",
			h.storeErr, h.dir, mib(segmentSize+lowSpace))
	case h.storeErr != nil:
		problem = "writing the Raft log failed: " + h.storeErr.Error()
	case h.probeErr != nil:
		problem = h.probeErr.Error()
	}
	healthy := problem == ""
	switch {
	case healthy && !h.state.Healthy:
		h.log.Info("the data directory takes writes again; this manager is healthy", "dir", h.dir, "unhealthy_for", time.Since(h.state.Since).Round(time.Millisecond))
		h.state = DiskHealth{Healthy: true, Since: time.Now()}
	case !healthy && h.state.Healthy:
		h.log.Error("the data directory cannot take writes; this manager is unhealthy until it can", "dir", h.dir, "problem", problem)
		h.state = DiskHealth{Problem: problem, Since: time.Now()}
	case !healthy:
		h.state.Problem = problem
	}
}

// watch probes the directory until stopWatch, and hands leadership away
// while this server leads unhealthy.
func (h *diskHealth) watch(r *raft.Raft) {
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.done)
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		var lastTransfer time.Time
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			h.recordProbe(probeDir(h.dir))
			h.unstick()
			if st := h.Health(); !st.Healthy && r.State() == raft.Leader && time.Since(lastTransfer) >= transferRetry {
				// Once per episode at Warn: a lone manager has no one to
				// hand leadership to, and would say so every few seconds.
				log := h.log.Warn
				if lastTransfer.After(st.Since) {
					log = h.log.Debug
				}
				lastTransfer = time.Now()
				log("handing leadership away: this manager cannot write its data directory", "problem", st.Problem)
				if err := r.LeadershipTransfer().Error(); err != nil {
					log("could not hand leadership away", "err", err)
				}
			}
		}
	}()
}

// unstick reopens a stuck log once the directory has room for a segment.
func (h *diskHealth) unstick() {
	h.mu.Lock()
	stuck := h.stuck
	h.mu.Unlock()
	if !stuck || h.reopen == nil {
		return
	}
	if free, known, err := freeBytes(h.dir); err != nil || known && free < segmentSize+lowSpace {
		return
	}
	if err := h.reopen(); err != nil {
		h.log.Warn("the raft log could not be reopened; trying again", "err", err)
		return
	}
	h.log.Info("the raft log was reopened after its disk had room again")
	h.mu.Lock()
	// The failure was the old log's; the reopened one has not failed.
	h.stuck, h.storeErr = false, nil
	h.updateLocked()
	h.mu.Unlock()
}

// stopWatch ends watch, if it runs.
func (h *diskHealth) stopWatch() {
	if h.stop != nil {
		close(h.stop)
		<-h.done
		h.stop = nil
	}
}

// probeDir checks that dir has more than the reserve free and takes a
// synced write.
func probeDir(dir string) error {
	free, known, err := freeBytes(dir)
	if err != nil {
		return fmt.Errorf("cannot read the free space of %s: %w", dir, err)
	}
	if known && free < lowSpace {
		return fmt.Errorf("%s has %s free, less than the %s reserve", dir, mib(free), mib(lowSpace))
	}
	return probeWrite(dir)
}

// probeWrite writes and syncs a small file, truncated first so that the
// write needs fresh space, then removes it.
func probeWrite(dir string) error {
	path := filepath.Join(dir, probeFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	buf := make([]byte, probeBytes)
	for i := range buf {
		buf[i] = byte(i) | 1 // not zeros, which some file systems store as holes
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// FreeBytes is the free space of dir's filesystem (known is false where
// the platform cannot tell), for what shares the disk with the log (the
// cluster registry keeps a reserve with it).
func FreeBytes(dir string) (free uint64, known bool, err error) { return freeBytes(dir) }

// CheckDataDir reports whether dir (created if missing) has the room and
// takes the writes a manager joining a cluster needs; a manager checks
// before it asks to join, so that a full disk is refused up front rather
// than after the cluster counted it in.
func CheckDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("the data directory cannot be created: %w", err)
	}
	free, known, err := freeBytes(dir)
	if err != nil {
		return fmt.Errorf("cannot read the free space of the data directory %s: %w", dir, err)
	}
	if known && free < JoinSpace {
		return fmt.Errorf("the data directory %s has %s free; a manager needs at least %s there (its Raft log takes %s at a time)",
			dir, mib(free), mib(JoinSpace), mib(segmentSize))
	}
	if err := probeWrite(dir); err != nil {
		return fmt.Errorf("the data directory %s cannot take writes: %w", dir, err)
	}
	return nil
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// DiskHealth reports whether this server can write its data directory.
func (n *Node) DiskHealth() DiskHealth { return n.stores.health.Health() }
