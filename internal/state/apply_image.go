package state

import (
	"errors"
	"fmt"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/types"
)

// Image records: what the cluster registry holds (see types.Image), by
// "<repo>@<digest>".

func imagesSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableImages,
		Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"digest": {Name: "digest", Indexer: &memdb.StringFieldIndex{Field: "Digest"}},
			"service": {Name: "service", Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "App"},
				&memdb.StringFieldIndex{Field: "Service"},
			}}},
		},
	}
}

// UpsertImage records a pushed image, or a push again of one recorded
// (which moves PushedAt and adds the replicas given). Result: the stored
// *types.Image.
type UpsertImage struct {
	Image *types.Image `json:"image"`
}

// DeleteImage forgets an image record (GC). Result: nil; an error wrapping
// ErrNotFound when there is none.
type DeleteImage struct {
	ID string `json:"id"`
}

// ImageReplica records that a manager holds (or, Drop, no longer holds)
// every blob of an image. Result: the updated *types.Image; an error
// wrapping ErrNotFound when the record is gone (GC got there first).
type ImageReplica struct {
	ID        string `json:"id"`
	ManagerID string `json:"manager_id"`
	Drop      bool   `json:"drop,omitempty"`
}

func (UpsertImage) kind() commandKind  { return kindUpsertImage }
func (DeleteImage) kind() commandKind  { return kindDeleteImage }
func (ImageReplica) kind() commandKind { return kindImageReplica }

func (c UpsertImage) apply(w *writeTxn) (any, error) {
	if c.Image == nil || c.Image.Repo == "" || c.Image.Digest == "" {
		return nil, errors.New("upsert image: the image has no repository or digest")
	}
	im := cloneImage(c.Image)
	im.ID = types.ImageRef(im.Repo, im.Digest)
	im.ModifyIndex = w.index
	if old := first[types.Image](w.txn, TableImages, "id", im.ID); old != nil {
		im.CreateIndex = old.CreateIndex
		im.Replicas = append(im.Replicas, old.Replicas...)
	} else {
		im.CreateIndex = w.index
	}
	slices.Sort(im.Replicas)
	im.Replicas = slices.Compact(im.Replicas)
	return im, w.insert(TableImages, im)
}

func (c DeleteImage) apply(w *writeTxn) (any, error) {
	old := first[types.Image](w.txn, TableImages, "id", c.ID)
	if old == nil {
		return nil, fmt.Errorf("image %s: %w", c.ID, ErrNotFound)
	}
	return nil, w.delete(TableImages, old)
}

func (c ImageReplica) apply(w *writeTxn) (any, error) {
	old := first[types.Image](w.txn, TableImages, "id", c.ID)
	if old == nil {
		return nil, fmt.Errorf("image %s: %w", c.ID, ErrNotFound)
	}
	if c.ManagerID == "" {
		return nil, errors.New("image replica: no manager ID")
	}
	if old.HasReplica(c.ManagerID) != c.Drop {
		return old, nil // nothing to change; no write
	}
	im := cloneImage(old)
	if c.Drop {
		im.Replicas = slices.DeleteFunc(im.Replicas, func(id string) bool { return id == c.ManagerID })
	} else {
		im.Replicas = append(im.Replicas, c.ManagerID)
		slices.Sort(im.Replicas)
	}
	im.ModifyIndex = w.index
	return im, w.insert(TableImages, im)
}

func cloneImage(im *types.Image) *types.Image {
	c := *im
	c.Blobs = slices.Clone(im.Blobs)
	c.Replicas = slices.Clone(im.Replicas)
	return &c
}

// Image returns one image record by "<repo>@<digest>", or nil.
func (v *View) Image(id string) *types.Image {
	return first[types.Image](v.txn, TableImages, "id", id)
}

// ImagesByDigest returns the records of one manifest (one per service it
// was pushed for), sorted by ID.
func (v *View) ImagesByDigest(digest string) []*types.Image {
	return list[types.Image](v.txn, TableImages, "digest", digest)
}

// Images returns every image record, sorted by ID.
func (v *View) Images() []*types.Image {
	return list[types.Image](v.txn, TableImages, "id")
}
