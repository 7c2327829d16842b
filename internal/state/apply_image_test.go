package state

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

func testImage(repo, hex string, replicas ...string) *types.Image {
	app, svc, _ := strings.Cut(repo, "/")
	return &types.Image{Digest: "sha256:" + strings.Repeat(hex, 64), Repo: repo, App: app, Service: svc,
		Config: "sha256:" + strings.Repeat("c", 64), Blobs: []types.ImageBlob{{Digest: "sha256:" + strings.Repeat("c", 64), Size: 10}},
		Size: 10, PushedAt: t0, Replicas: replicas}
}

// TestImageRecords: an image is recorded under repo@digest; a push again
// keeps its create index and merges replicas; replicas are added and
// dropped once; snapshots carry the records; delete and a missing record.
func TestImageRecords(t *testing.T) {
	h := newHarness(t)
	got := h.mustApply(UpsertImage{Image: testImage("shop/web", "a", "m1")}).(*types.Image)
	want := "shop/web@sha256:" + strings.Repeat("a", 64)
	if got.ID != want || got.CreateIndex != 1 {
		t.Fatalf("stored %s (create %d), want %s at 1", got.ID, got.CreateIndex, want)
	}
	// The same manifest for another service is a record of its own.
	h.mustApply(UpsertImage{Image: testImage("shop/worker", "a", "m1")})
	if ims := h.store.View().ImagesByDigest(got.Digest); len(ims) != 2 {
		t.Fatalf("records of one digest = %d, want 2", len(ims))
	}
	again := h.mustApply(UpsertImage{Image: testImage("shop/web", "a", "m2")}).(*types.Image)
	if again.CreateIndex != 1 || strings.Join(again.Replicas, ",") != "m1,m2" {
		t.Fatalf("pushed again: create %d, replicas %v; want 1 and m1,m2", again.CreateIndex, again.Replicas)
	}
	r := h.mustApply(ImageReplica{ID: want, ManagerID: "m0"}).(*types.Image)
	if strings.Join(r.Replicas, ",") != "m0,m1,m2" {
		t.Fatalf("replicas %v, want m0,m1,m2 (sorted)", r.Replicas)
	}
	before := h.store.View().Image(want).ModifyIndex
	h.mustApply(ImageReplica{ID: want, ManagerID: "m0"})
	if h.store.View().Image(want).ModifyIndex != before {
		t.Error("recording a replica twice wrote the record again")
	}
	r = h.mustApply(ImageReplica{ID: want, ManagerID: "m1", Drop: true}).(*types.Image)
	if strings.Join(r.Replicas, ",") != "m0,m2" {
		t.Fatalf("after a drop: replicas %v, want m0,m2", r.Replicas)
	}
	if old := h.store.View().Image("shop/worker@" + got.Digest); len(old.Replicas) != 1 {
		t.Fatalf("another record's replicas changed: %v", old.Replicas)
	}

	dst := newHarness(t)
	if err := dst.fsm.Restore(ioNopCloser(snapshotOf(t, h.fsm))); err != nil {
		t.Fatal(err)
	}
	if ims := dst.store.View().Images(); len(ims) != 2 || ims[0].ID != want {
		t.Fatalf("images after a snapshot restore = %v", ims)
	}
	dst.mustApply(DeleteImage{ID: want})
	if dst.store.View().Image(want) != nil {
		t.Fatal("still recorded after DeleteImage")
	}
	if _, err := dst.apply(DeleteImage{ID: want}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing image: %v, want ErrNotFound", err)
	}
	if _, err := dst.apply(ImageReplica{ID: want, ManagerID: "m1"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a replica of a missing image: %v, want ErrNotFound", err)
	}
	if _, err := dst.apply(UpsertImage{}); err == nil {
		t.Fatal("an upsert with no image was accepted")
	}
}

// TestImageKindsStay: the kinds are stored in Raft logs and round-trip
// through Encode.
func TestImageKindsStay(t *testing.T) {
	for _, c := range []struct {
		cmd  Command
		want commandKind
	}{{UpsertImage{}, 33}, {DeleteImage{}, 34}, {ImageReplica{}, 35}} {
		if c.cmd.kind() != c.want {
			t.Errorf("%T kind = %d, want %d", c.cmd, c.cmd.kind(), c.want)
		}
		b, err := Encode(c.cmd)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(b)
		if err != nil || got.kind() != c.want {
			t.Errorf("%T decodes as %T, %v", c.cmd, got, err)
		}
	}
}
