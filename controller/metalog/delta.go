package metalog

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/skein-io/skein/controller/image"
)

// Record keys: what a metadata record's value holds.
const (
	// KeyImage marks a snapshot: the value is the whole image
	// (image.Marshal) as of the record's offset. A record without a key is
	// an image too (batches written before deltas existed).
	KeyImage = "image"
	// KeyDelta marks a delta: the value is the JSON of DeltaValue, the
	// changes of the one Raft entry at the record's offset.
	KeyDelta = "delta"
)

// DeltaValue is the value of a delta record.
type DeltaValue struct {
	// PrevIndex is the index of the image the delta applies to: the Raft
	// index of the previous entry the controller's FSM applied. A broker
	// applies the delta only if its image's Index is PrevIndex.
	PrevIndex uint64 `json:"prev_index"`
	// ClusterID is the cluster id of that image: a broker applies the
	// delta only if its image has the same, so that a broker following a
	// wiped and re-created cluster (whose indexes may match its own) starts
	// over from a snapshot instead of mixing two histories.
	ClusterID string `json:"cluster_id,omitempty"`
	// Records are the changes of the entry when the FSM applied it; none
	// when it discarded the entry (undecodable, stale term or invalid), so
	// that the image only advances its Index.
	Records []Change `json:"records,omitempty"`
}

// EncodeDelta encodes the outcome of the Raft entry at index, applied onto
// the image prev, as a metadata batch: one record with key KeyDelta at
// offset index, stamped timestampMillis. changes are the entry's changes if
// it was applied, nil if it was discarded.
func EncodeDelta(prev *image.Image, index uint64, changes []Change, timestampMillis int64) ([]byte, error) {
	if prev.Index >= index {
		return nil, fmt.Errorf("delta at index %d onto index %d", index, prev.Index)
	}
	value, err := json.Marshal(DeltaValue{PrevIndex: prev.Index, ClusterID: prev.ClusterID, Records: changes})
	if err != nil {
		return nil, fmt.Errorf("encode metadata delta: %w", err)
	}
	return EncodeBatch(Record{Offset: int64(index), Timestamp: timestampMillis, Key: []byte(KeyDelta), Value: value}), nil
}

// Update is one record of a metadata Fetch answer: a snapshot (Snapshot
// set) or a delta.
type Update struct {
	// Index is the record's offset: the image index after the update.
	Index uint64
	// Snapshot is the whole image at Index, nil for a delta.
	Snapshot *image.Image
	// Delta is the delta's value (zero for a snapshot).
	Delta DeltaValue
}

// DecodeUpdates checks and decodes the batches of a metadata Fetch answer
// (DecodeBatches) into updates, in order.
func DecodeUpdates(raw []byte) ([]Update, error) {
	recs, err := DecodeBatches(raw)
	if err != nil {
		return nil, err
	}
	out := make([]Update, 0, len(recs))
	for _, r := range recs {
		if r.Offset < 0 {
			return nil, fmt.Errorf("metadata record at negative offset %d", r.Offset)
		}
		u := Update{Index: uint64(r.Offset)}
		switch {
		case r.Key == nil || string(r.Key) == KeyImage:
			if u.Snapshot, err = decodeImageRecord(r); err != nil {
				return nil, err
			}
		case string(r.Key) == KeyDelta:
			if err := json.Unmarshal(r.Value, &u.Delta); err != nil {
				return nil, fmt.Errorf("decode metadata delta at offset %d: %w", r.Offset, err)
			}
			if u.Delta.PrevIndex >= u.Index {
				return nil, fmt.Errorf("metadata delta at offset %d applies onto index %d", r.Offset, u.Delta.PrevIndex)
			}
		default:
			return nil, fmt.Errorf("metadata record at offset %d has unknown key %q", r.Offset, r.Key)
		}
		out = append(out, u)
	}
	return out, nil
}

// ErrNotChained is the error of a delta that does not apply to the image it
// is given: its PrevIndex is not the image's Index, its ClusterID not the
// image's, or its changes are invalid for that image (which then differs
// from the controller's). The follower must start over from a snapshot.
var ErrNotChained = errors.New("metadata delta does not chain onto the image")

// ApplyTo returns the image after u: a snapshot replaces img, a delta is
// applied to it (ApplyEntry) if it chains onto img, else the error wraps
// ErrNotChained. img is not modified.
func (u Update) ApplyTo(img *image.Image) (*image.Image, error) {
	if u.Snapshot != nil {
		return u.Snapshot, nil
	}
	if u.Delta.PrevIndex != img.Index {
		return nil, fmt.Errorf("%w: delta %d applies onto index %d, the image is at %d",
			ErrNotChained, u.Index, u.Delta.PrevIndex, img.Index)
	}
	if u.Delta.ClusterID != img.ClusterID {
		return nil, fmt.Errorf("%w: delta %d applies onto cluster %q, the image is of cluster %q",
			ErrNotChained, u.Index, u.Delta.ClusterID, img.ClusterID)
	}
	next, err := ApplyEntry(img, u.Index, Entry{Records: u.Delta.Records})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotChained, err)
	}
	return next, nil
}

// ApplyUpdates applies ups in order to img (ApplyTo) and returns the last
// image.
func ApplyUpdates(img *image.Image, ups []Update) (*image.Image, error) {
	for _, u := range ups {
		next, err := u.ApplyTo(img)
		if err != nil {
			return nil, err
		}
		img = next
	}
	return img, nil
}
