package metalog

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// Topic is the controllers' metadata topic; brokers fetch its partition 0.
// Its name is Kafka's (KRaft's __cluster_metadata) and must never change:
// clients and tools address it by name.
const Topic = "__cluster_metadata"

// Record is one metadata record as shipped in a batch.
type Record struct {
	// Offset is the record's offset in the metadata log (today the Raft
	// index of the image it holds).
	Offset int64
	// Timestamp is when the batch was encoded, in Unix milliseconds.
	Timestamp int64
	// Key says what Value holds: KeyImage, KeyDelta, or nil (an image, as
	// batches written before deltas existed).
	Key []byte
	// Value is the record's payload; nil is a null value.
	Value []byte
}

// attrCompression masks the compression codec in a batch's attributes.
const attrCompression = 0x07

// EncodeBatch encodes r as a metadata batch (see the package comment for
// the layout).
func EncodeBatch(r Record) []byte {
	rec := kmsg.Record{Key: r.Key, Value: r.Value}
	// The record's length counts the bytes after the length varint: encode
	// once with length 0 (a 1-byte varint) to measure them.
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	b := kmsg.RecordBatch{
		FirstOffset:    r.Offset,
		Magic:          2,
		FirstTimestamp: r.Timestamp,
		MaxTimestamp:   r.Timestamp,
		ProducerID:     -1,
		ProducerEpoch:  -1,
		FirstSequence:  -1,
		NumRecords:     1,
		Records:        rec.AppendTo(nil),
	}
	return storage.SealBatch(b.AppendTo(nil)) // fills Length and the CRC-32C
}

// DecodeBatch checks and decodes the metadata batch at the start of raw:
// magic 2, whole, CRC-32C valid, uncompressed, one record. Bytes after the
// batch are ignored (DecodeBatches decodes them too). The record's Offset
// and Timestamp are the batch's first ones plus the record's deltas;
// headers, which EncodeBatch never writes, are ignored.
func DecodeBatch(raw []byte) (Record, error) {
	h, err := storage.ParseBatchHeader(raw)
	if err != nil {
		return Record{}, fmt.Errorf("metadata batch: %w", err)
	}
	if h.Size() > int64(len(raw)) {
		return Record{}, fmt.Errorf("metadata batch: length %d out of bounds (%d bytes present)", h.Length, len(raw))
	}
	raw = raw[:h.Size()]
	if err := storage.ValidateBatch(raw); err != nil { // the CRC-32C
		return Record{}, fmt.Errorf("metadata batch: %w", err)
	}
	var b kmsg.RecordBatch
	if err := b.ReadFrom(raw); err != nil {
		return Record{}, fmt.Errorf("metadata batch: %w", err)
	}
	switch {
	case b.Attributes&attrCompression != 0:
		return Record{}, fmt.Errorf("metadata batch: compressed (attributes %#x)", b.Attributes)
	case b.NumRecords != 1:
		return Record{}, fmt.Errorf("metadata batch: %d records, want 1", b.NumRecords)
	}
	var r kmsg.Record
	if err := r.ReadFrom(b.Records); err != nil {
		return Record{}, fmt.Errorf("metadata record: %w", err)
	}
	return Record{
		Offset:    b.FirstOffset + int64(r.OffsetDelta),
		Timestamp: b.FirstTimestamp + r.TimestampDelta64,
		Key:       r.Key,
		Value:     r.Value,
	}, nil
}

// DecodeBatches checks and decodes the consecutive metadata batches of raw,
// as a Fetch answer carries them, each as DecodeBatch does. Bytes after the
// last whole batch that are too few to hold the batch they start (a
// partial batch at the end of a Fetch answer) are ignored, unless no whole
// batch precedes them. An empty raw is no batches.
func DecodeBatches(raw []byte) ([]Record, error) {
	var out []Record
	for len(raw) > 0 {
		h, err := storage.ParseBatchHeader(raw)
		if len(out) > 0 && (len(raw) < storage.BatchHeaderSize || (err == nil && h.Size() > int64(len(raw)))) {
			break // a partial batch ends the answer
		}
		r, err := DecodeBatch(raw)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", len(out), err)
		}
		out = append(out, r)
		raw = raw[h.Size():] // DecodeBatch checked the length
	}
	return out, nil
}

// EncodeImage encodes img as a metadata batch: one record with key
// KeyImage at offset img.Index whose value is image.Marshal(img), stamped
// timestampMillis (a snapshot).
func EncodeImage(img *image.Image, timestampMillis int64) ([]byte, error) {
	value, err := image.Marshal(img)
	if err != nil {
		return nil, err
	}
	return EncodeBatch(Record{Offset: int64(img.Index), Timestamp: timestampMillis, Key: []byte(KeyImage), Value: value}), nil
}

// DecodeImage checks and decodes a batch made by EncodeImage: the record's
// value must be an image whose index is the record's offset.
func DecodeImage(raw []byte) (*image.Image, error) {
	r, err := DecodeBatch(raw)
	if err != nil {
		return nil, err
	}
	return decodeImageRecord(r)
}

func decodeImageRecord(r Record) (*image.Image, error) {
	if r.Key != nil && string(r.Key) != KeyImage {
		return nil, fmt.Errorf("metadata record at offset %d is a %q, not an image", r.Offset, r.Key)
	}
	img, err := image.Unmarshal(r.Value)
	if err != nil {
		return nil, err
	}
	if r.Offset != int64(img.Index) {
		return nil, fmt.Errorf("metadata record at offset %d holds image index %d", r.Offset, img.Index)
	}
	return img, nil
}
