package raftnode

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/berth-dev/berth/internal/state"
)

// poisoningFSM is a state FSM whose copy of every entry containing poison
// has one byte flipped, as if its disk had changed it.
type poisoningFSM struct {
	*state.FSM // its Halted and HaltErr make this a Halter
	poison     []byte
}

func (f *poisoningFSM) Apply(l *raft.Log) any {
	if l.Type == raft.LogCommand && bytes.Contains(l.Data, f.poison) {
		c := *l
		c.Data = append([]byte(nil), l.Data...)
		c.Data[bytes.Index(c.Data, f.poison)] ^= 0x01
		l = &c
	}
	return f.FSM.Apply(l)
}

// TestFollowerHaltsOnCorruptEntry: a follower whose copy of a committed
// entry is corrupt stops applying, leaves Raft and says which entry and what
// to do; the two others go on committing without it.
func TestFollowerHaltsOnCorruptEntry(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	servers := startCluster(t, ctx, 2, nil)
	st, err := state.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bad, err := New(Config{ID: "m3", DataDir: dir, BindAddr: "127.0.0.1:0", Logger: testLogger(t)},
		&poisoningFSM{FSM: state.NewFSM(st, nil), poison: []byte("poison")})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = bad.Shutdown() }) })
	leader := servers[0]
	if err := leader.node.AddVoter(ctx, "m3", bad.Addr()); err != nil {
		t.Fatal(err)
	}
	apply(t, ctx, leader.node, upsertApp("before"))
	if err := bad.Halted(); err != nil {
		t.Fatalf("Halted before any corrupt entry: %v", err)
	}

	res := apply(t, ctx, leader.node, upsertApp("poison"))
	index := res.(*state.UpsertResult).App.ModifyIndex
	deadline := time.Now().Add(30 * time.Second)
	for bad.Halted() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	herr := bad.Halted()
	if !errors.Is(herr, ErrHalted) || !errors.Is(herr, state.ErrCorrupt) {
		t.Fatalf("Halted = %v, want ErrHalted and ErrCorrupt", herr)
	}
	for _, want := range []string{"entry " + strconv.FormatUint(index, 10) + " ", dir, "wipe"} {
		if !strings.Contains(herr.Error(), want) {
			t.Errorf("Halted = %q, does not say %q", herr, want)
		}
	}
	if got := bad.Stats()["state"]; got != raft.Shutdown.String() {
		t.Errorf("the halted server's raft is %s, want %s", got, raft.Shutdown)
	}
	if st.View().App("poison") != nil {
		t.Error("the halted server applied the corrupt entry")
	}

	// The two healthy servers still make a quorum of three.
	res = apply(t, ctx, leader.node, upsertApp("after"))
	waitApplied(t, ctx, servers[1], res.(*state.UpsertResult).App.ModifyIndex)
	if st.View().App("after") != nil {
		t.Error("the halted server applied an entry after the corrupt one")
	}
}
