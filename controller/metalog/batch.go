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
	// Value is the record's payload; nil is a null value.
	Value []byte
}

// attrCompression masks the compression codec in a batch's attributes.
const attrCompression = 0x07

// EncodeBatch encodes r as a metadata batch (see the package comment for
// the layout).
func EncodeBatch(r Record) []byte {
	rec := kmsg.Record{Value: r.Value}
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
// batch are ignored. The record's Offset and Timestamp are the batch's
// first ones plus the record's deltas; a key or headers, which EncodeBatch
// never writes, are ignored.
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
		Value:     r.Value,
	}, nil
}

// EncodeImage encodes img as a metadata batch: one record at offset
// img.Index whose value is image.Marshal(img), stamped timestampMillis.
func EncodeImage(img *image.Image, timestampMillis int64) ([]byte, error) {
	value, err := image.Marshal(img)
	if err != nil {
		return nil, err
	}
	return EncodeBatch(Record{Offset: int64(img.Index), Timestamp: timestampMillis, Value: value}), nil
}

// DecodeImage checks and decodes a batch made by EncodeImage: the record's
// value must be an image whose index is the record's offset.
func DecodeImage(raw []byte) (*image.Image, error) {
	r, err := DecodeBatch(raw)
	if err != nil {
		return nil, err
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
