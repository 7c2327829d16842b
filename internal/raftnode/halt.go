package raftnode

import (
	"errors"
	"fmt"
)

// Halter is an FSM that can stop for good, when it meets a committed entry
// it cannot apply safely (a corrupt one). Halted is closed then, and HaltErr
// says which entry and why. New watches an FSM that is a Halter.
type Halter interface {
	Halted() <-chan struct{}
	HaltErr() error
}

// ErrHalted is wrapped by the error of Halted.
var ErrHalted = errors.New("this manager has stopped taking part in the cluster")

// watchHalt takes this server out of Raft once h halts: a server whose
// state has stopped following the log must neither vote nor lead, and it
// must not snapshot or compact its log. Shutting raft down closes its
// transport too, so the peers see it as a server that is down. The data
// stays as it is, for the operator to look at before wiping it.
func (n *Node) watchHalt(h Halter) {
	defer close(n.watchDone)
	select {
	case <-h.Halted():
	case <-n.stopWatch:
		return
	}
	err := fmt.Errorf("%w; %w: stop it, wipe its data directory %s and join it to the cluster again", h.HaltErr(), ErrHalted, n.dataDir)
	n.haltErr.Store(&err)
	n.logger.Error(err.Error())
	if serr := n.raft.Shutdown().Error(); serr != nil {
		n.logger.Error("stop raft after the halt", "err", serr)
	}
}

// Halted is nil while this server takes part in Raft. Once its FSM has
// halted it is an error, wrapping ErrHalted, of one sentence naming the log
// entry and telling the operator what to do; the server then serves nothing
// from its state.
func (n *Node) Halted() error {
	if p := n.haltErr.Load(); p != nil {
		return *p
	}
	return nil
}
