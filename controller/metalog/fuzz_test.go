package metalog

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// FuzzDecodeMetadataBatch feeds arbitrary bytes to the decoders. Invariants:
//   - DecodeBatch and DecodeImage never panic;
//   - a batch DecodeBatch accepts re-encodes stably: EncodeBatch of the
//     decoded record decodes to the same record, and encoding that again
//     gives the same bytes.
//
// Each input is also tried resealed (length and CRC-32C recomputed over the
// whole input), so mutations get past the CRC check into the record decoding.
func FuzzDecodeMetadataBatch(f *testing.F) {
	img := image.New()
	img.Index = 5
	img.ClusterID = "fuzz"
	seed, err := EncodeImage(img, 1700000000000)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(EncodeBatch(Record{Offset: 1, Value: nil}))
	f.Add(EncodeBatch(Record{Offset: -1, Timestamp: -1, Value: []byte{}}))
	f.Add(seed[:storage.BatchHeaderSize])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		check(t, raw)
		if len(raw) >= storage.BatchHeaderSize {
			check(t, storage.SealBatch(bytes.Clone(raw)))
		}
	})
}

func check(t *testing.T, raw []byte) {
	_, _ = DecodeImage(raw)
	_, _ = DecodeUpdates(raw)
	r, err := DecodeBatch(raw)
	if err != nil {
		return
	}
	again := EncodeBatch(r)
	r2, err := DecodeBatch(again)
	if err != nil {
		t.Fatalf("re-encoded batch does not decode: %v", err)
	}
	if r2.Offset != r.Offset || r2.Timestamp != r.Timestamp || !bytes.Equal(r2.Value, r.Value) || (r2.Value == nil) != (r.Value == nil) ||
		!bytes.Equal(r2.Key, r.Key) || (r2.Key == nil) != (r.Key == nil) {
		t.Fatalf("re-decoded record differs: offset %d/%d timestamp %d/%d key %q/%q value %d/%d bytes",
			r2.Offset, r.Offset, r2.Timestamp, r.Timestamp, r2.Key, r.Key, len(r2.Value), len(r.Value))
	}
	if third := EncodeBatch(r2); !bytes.Equal(third, again) {
		t.Fatalf("re-encoding is not stable:\n%x\n%x", again, third)
	}
}

// FuzzDecodeMetadataDeltas feeds arbitrary bytes to the decoder of a Fetch
// answer and applies what it accepts to an image, as a broker does:
//   - raw is decoded as a whole answer (DecodeUpdates) and applied
//     (ApplyUpdates) to a base image;
//   - value is wrapped, as a delta record chained onto the base image, in a
//     valid batch, so that mutations reach the delta's JSON and ApplyEntry
//     past the CRC.
//
// Invariants: nothing panics; a bad input is an error; the base image is
// never modified; an applied answer's image index is its last record's
// offset.
func FuzzDecodeMetadataDeltas(f *testing.F) {
	base := scaleImage(3, 4)
	baseJSON, err := image.Marshal(base)
	if err != nil {
		f.Fatal(err)
	}
	g := newEntryGen(1)
	img := base
	var answer []byte
	for range 12 {
		e := g.entry(img)
		next, err := ApplyEntry(img, img.Index+1, e)
		changes := e.Records
		if err != nil {
			changes = nil
		}
		b, err := EncodeDelta(img, next.Index, changes, 1700000000000)
		if err != nil {
			f.Fatal(err)
		}
		value, err := json.Marshal(DeltaValue{PrevIndex: img.Index, ClusterID: img.ClusterID, Records: changes})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, value)
		answer = append(answer, b...)
		img = next
	}
	f.Add(answer, []byte(`{"prev_index":1000,"records":[{"type":"ChangePartition","change_partition":{"topic_id":[1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0],"partition":2,"leader":3,"elr":[9]}}]}`))
	snap, err := EncodeImage(base, 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(append(snap, answer[:len(answer)/2]...), []byte(`{"prev_index":1000}`))
	f.Add([]byte{}, []byte(`null`))
	f.Fuzz(func(t *testing.T, raw, value []byte) {
		if ups, err := DecodeUpdates(raw); err == nil {
			if out, err := ApplyUpdates(base, ups); err == nil && len(ups) > 0 && out.Index != ups[len(ups)-1].Index {
				t.Fatalf("applied answer at index %d, last record at %d", out.Index, ups[len(ups)-1].Index)
			}
		}
		delta := EncodeBatch(Record{Offset: int64(base.Index) + 1, Key: []byte(KeyDelta), Value: value})
		if ups, err := DecodeUpdates(delta); err == nil {
			if len(ups) != 1 || ups[0].Snapshot != nil {
				t.Fatalf("one delta record decoded as %d updates", len(ups))
			}
			_, _ = ApplyUpdates(base, ups)
		}
		if now, _ := image.Marshal(base); !bytes.Equal(now, baseJSON) {
			t.Fatalf("applying modified the base image")
		}
	})
}
