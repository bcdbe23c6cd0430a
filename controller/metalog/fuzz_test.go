package metalog

import (
	"bytes"
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
	r, err := DecodeBatch(raw)
	if err != nil {
		return
	}
	again := EncodeBatch(r)
	r2, err := DecodeBatch(again)
	if err != nil {
		t.Fatalf("re-encoded batch does not decode: %v", err)
	}
	if r2.Offset != r.Offset || r2.Timestamp != r.Timestamp || !bytes.Equal(r2.Value, r.Value) || (r2.Value == nil) != (r.Value == nil) {
		t.Fatalf("re-decoded record differs: offset %d/%d timestamp %d/%d value %d/%d bytes",
			r2.Offset, r.Offset, r2.Timestamp, r.Timestamp, len(r2.Value), len(r.Value))
	}
	if third := EncodeBatch(r2); !bytes.Equal(third, again) {
		t.Fatalf("re-encoding is not stable:\n%x\n%x", again, third)
	}
}
