package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Apply commits cmd through Raft and returns what the FSM's Apply returned
// for it. When the FSM returned an error value (the command was rejected),
// that error is returned as err. Only the leader can apply: elsewhere the
// error wraps ErrNotLeader. If ctx ends first, Apply returns ctx's error; the
// command may still be committed later.
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, error) {
	f := n.raft.Apply(cmd, enqueueTimeout(ctx))
	if err := wait(ctx, f); err != nil {
		return nil, fmt.Errorf("apply to raft: %w", err)
	}
	resp := f.Response()
	if err, ok := resp.(error); ok {
		return nil, err
	}
	return resp, nil
}

// Barrier returns once every entry committed before the call has been
// applied to the FSM, so that reads of the FSM see them. Leader only.
func (n *Node) Barrier(ctx context.Context) error {
	if err := wait(ctx, n.raft.Barrier(enqueueTimeout(ctx))); err != nil {
		return fmt.Errorf("raft barrier: %w", err)
	}
	return nil
}

// enqueueTimeout bounds how long raft may wait to accept an operation: the
// time left before ctx's deadline, or no bound (0) without one.
func enqueueTimeout(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return max(time.Until(deadline), time.Millisecond)
}

// wait waits for f or ctx, and translates raft's leadership errors.
//
// Raft futures cannot be cancelled, so waiting on ctx needs a goroutine; it
// ends when raft resolves the future, which raft always does (on commit,
// on failure, or at shutdown).
func wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return leadershipError(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func leadershipError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// The entry may or may not commit; the caller retries on the new
		// leader, so commands must be safe to apply twice.
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}
