package state

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// TestEncodeDetectsEveryByteChange changes each byte of encoded commands to
// every other value: decode must refuse each change with ErrCorrupt, never
// hand back a different command.
func TestEncodeDetectsEveryByteChange(t *testing.T) {
	for _, cmd := range []Command{
		ScaleService{App: "web", Service: "api", Replicas: 3, Now: t0},
		UpsertApp{App: testApp(), Now: t0},
		PurgeApp{Name: "w"},
	} {
		b, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			for mask := 1; mask < 256; mask++ {
				bad := append([]byte(nil), b...)
				bad[i] ^= byte(mask)
				if got, err := decode(bad); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%T: byte %d ^ %#x: decode gave %+v, %v; want ErrCorrupt", cmd, i, mask, got, err)
				}
			}
		}
	}
}

// TestDecodeRejects covers entries that are no command at all.
func TestDecodeRejects(t *testing.T) {
	good, _ := Encode(PurgeApp{Name: "w"})
	for name, data := range map[string][]byte{
		"empty":                 nil,
		"header only":           {checksummed, byte(kindPurgeApp)},
		"truncated by one byte": good[:len(good)-1],
		"longer by one byte":    append(append([]byte(nil), good...), 0),
		"not json after a kind": {byte(kindPurgeApp), 'x'},
		"unknown kind":          frame(99, []byte(`{}`)),
		"old format, bad json":  []byte("\x03{\"name\":"),
		"checksummed, bad json": frame(kindPurgeApp, []byte(`{"name":`)),
	} {
		if _, err := decode(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode(%q) = %v, want ErrCorrupt", name, data, err)
		}
	}
}

// TestDecodeOldFormat: entries written by managers before checksums (the
// kind byte, then JSON) still decode, so their data directories open.
func TestDecodeOldFormat(t *testing.T) {
	for _, tt := range []struct {
		data string
		want Command
	}{
		{"\x05" + `{"app":"web","service":"api","replicas":3,"now":"2026-11-25T01:00:00Z"}`,
			&ScaleService{App: "web", Service: "api", Replicas: 3, Now: t0}},
		{"\x03" + `{"name":"web"}`, &PurgeApp{Name: "web"}},
	} {
		got, err := decode([]byte(tt.data))
		if err != nil {
			t.Fatalf("decode(%q): %v", tt.data, err)
		}
		if got.kind() != tt.want.kind() || !jsonEqual(got, tt.want) {
			t.Errorf("decode(%q) = %+v, want %+v", tt.data, got, tt.want)
		}
	}
}

// TestFSMHaltsOnCorruptEntry: after an entry that does not decode, the FSM
// applies nothing more, says where it stopped, and refuses to snapshot.
func TestFSMHaltsOnCorruptEntry(t *testing.T) {
	h := newHarness(t)
	h.mustApply(UpsertApp{App: testApp(), Now: t0}) // index 1
	corrupt, _ := Encode(ScaleService{App: "web", Service: "api", Replicas: 7, Now: t0})
	corrupt[len(corrupt)/2] ^= 0x01
	select {
	case <-h.fsm.Halted():
		t.Fatal("Halted is closed before any corrupt entry")
	default:
	}
	if err := h.fsm.HaltErr(); err != nil {
		t.Fatalf("HaltErr before any corrupt entry = %v", err)
	}

	res := h.fsm.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: corrupt})
	var he *HaltError
	if err, _ := res.(error); !errors.As(err, &he) || he.Index != 2 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Apply of a corrupt entry = %v, want a HaltError at index 2 wrapping ErrCorrupt", res)
	}
	// A later, valid entry is not applied either.
	_, err := h.apply(ScaleService{App: "web", Service: "api", Replicas: 5, Now: t0}) // index 3
	if !errors.As(err, &he) || he.Index != 2 {
		t.Fatalf("Apply after the halt = %v, want the HaltError of index 2", err)
	}
	if got := h.store.View().App("web").Services[0].Replicas; got != 2 {
		t.Errorf("api has %d replicas after the halt, want 2 (the state before the corrupt entry)", got)
	}
	if got := h.store.View().Index(); got != 1 {
		t.Errorf("store index = %d after the halt, want 1", got)
	}
	select {
	case <-h.fsm.Halted():
	default:
		t.Error("Halted is not closed after a corrupt entry")
	}
	if err := h.fsm.HaltErr(); !errors.As(err, &he) || he.Index != 2 {
		t.Errorf("HaltErr = %v, want the HaltError of index 2", err)
	}
	if _, err := h.fsm.Snapshot(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Snapshot of a halted FSM = %v, want a refusal", err)
	}
}

// TestFSMRejectionDoesNotHalt: a command the store refuses (its target is
// missing) is an answer, the same on every manager, not a halt.
func TestFSMRejectionDoesNotHalt(t *testing.T) {
	h := newHarness(t)
	if _, err := h.apply(ScaleService{App: "nope", Service: "api", Replicas: 1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("scale of a missing app = %v, want ErrNotFound", err)
	}
	h.mustApply(UpsertApp{App: testApp(), Now: t0})
	if err := h.fsm.HaltErr(); err != nil {
		t.Errorf("HaltErr after a rejected command = %v", err)
	}
}
