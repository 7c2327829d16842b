package state

import (
	"encoding/binary"
	"fmt"

	"github.com/berth-dev/berth/internal/types"
)

// taskOrder is the tasks table's "order" index: its keys sort as
// compareTasks does (app, service, slot, node, create index, ID), so a
// listing of an app or a service comes out of the index in order and is
// not sorted again. Sorting each listing was a fifth of a leader's CPU
// with 10,000 tasks in one service: the reconciler lists every service on
// every pass. Strings end with a 0 byte (names never hold one), which
// sorts "a" before "ab" as cmp.Compare does; numbers are big-endian, the
// slot with its sign bit flipped. FromArgs takes a prefix: (), (app) or
// (app, service).
type taskOrder struct{}

func (taskOrder) FromObject(obj any) (bool, []byte, error) {
	t, ok := obj.(*types.Task)
	if !ok {
		return false, nil, fmt.Errorf("task order index: %T is not a task", obj)
	}
	key := make([]byte, 0, len(t.App)+len(t.Service)+len(t.NodeID)+len(t.ID)+20)
	key = append(append(key, t.App...), 0)
	key = append(append(key, t.Service...), 0)
	key = binary.BigEndian.AppendUint64(key, uint64(t.Slot)^(1<<63))
	key = append(append(key, t.NodeID...), 0)
	key = binary.BigEndian.AppendUint64(key, t.CreateIndex)
	key = append(append(key, t.ID...), 0)
	return true, key, nil
}

func (taskOrder) FromArgs(args ...any) ([]byte, error) {
	if len(args) > 2 {
		return nil, fmt.Errorf("task order index: %d arguments, want at most app and service", len(args))
	}
	var key []byte
	for _, a := range args {
		s, ok := a.(string)
		if !ok {
			return nil, fmt.Errorf("task order index: argument %v is not a string", a)
		}
		key = append(append(key, s...), 0)
	}
	return key, nil
}
