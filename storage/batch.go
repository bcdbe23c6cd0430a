package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Byte layout of a v2 record batch header. These offsets are Kafka's wire and
// disk format. The CRC-32C covers everything from the attributes to the end
// of the batch, so the base offset and partition leader epoch can be
// rewritten without recomputing it.
const (
	BatchHeaderSize = 61

	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// batchLengthOverhead is what the length field does not count: the
	// base offset and the length field itself.
	batchLengthOverhead = 12

	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// SealBatch fills in the length and CRC-32C fields of an encoded v2 batch
// whose other bytes are final (encoded with kmsg.RecordBatch.AppendTo, or
// changed in place), and returns it.
func SealBatch(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-batchLengthOverhead))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// BatchHeader is the fixed part of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // the length field: bytes after it
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the whole batch's size in bytes.
func (h BatchHeader) Size() int64 { return int64(h.Length) + batchLengthOverhead }

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// LastSequence is the sequence number of the batch's last record (sequences
// wrap from MaxInt32 to 0).
func (h BatchHeader) LastSequence() int32 {
	return seqAdd(h.BaseSequence, h.LastOffsetDelta)
}

// Idempotent says the batch carries a producer id.
func (h BatchHeader) Idempotent() bool { return h.ProducerID >= 0 }

func seqAdd(seq, delta int32) int32 {
	s := int64(seq) + int64(delta)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

// ParseBatchHeader decodes the header at the start of b. It checks that the
// header is present, the magic is 2 and the length field is plausible; it
// does not check that the whole batch is present or its CRC.
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: %d bytes is shorter than a batch header", ErrCorruptBatch, len(b))
	}
	h := BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(binary.BigEndian.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d, only v2 batches are supported", ErrCorruptBatch, h.Magic)
	}
	if h.Size() < BatchHeaderSize {
		return h, fmt.Errorf("%w: length field %d is shorter than a batch header", ErrCorruptBatch, h.Length)
	}
	if h.LastOffsetDelta < 0 || h.RecordCount < 0 {
		return h, fmt.Errorf("%w: negative last offset delta %d or record count %d", ErrCorruptBatch, h.LastOffsetDelta, h.RecordCount)
	}
	return h, nil
}

// ValidateBatch checks that b is exactly one whole v2 batch with a correct
// CRC-32C.
func ValidateBatch(b []byte) error {
	h, err := ParseBatchHeader(b)
	if err != nil {
		return err
	}
	if h.Size() != int64(len(b)) {
		return fmt.Errorf("%w: length field says %d bytes, %d present", ErrCorruptBatch, h.Size(), len(b))
	}
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != h.CRC {
		return fmt.Errorf("%w: CRC-32C %08x, header says %08x", ErrCorruptBatch, got, h.CRC)
	}
	return nil
}

// SplitBatches calls fn with each whole batch of b, in order. Trailing bytes
// that are not a whole batch are ErrCorruptBatch. It checks lengths only.
func SplitBatches(b []byte, fn func(batch []byte) error) error {
	for len(b) > 0 {
		h, err := ParseBatchHeader(b)
		if err != nil {
			return err
		}
		if h.Size() > int64(len(b)) {
			return fmt.Errorf("%w: batch of %d bytes, %d present", ErrCorruptBatch, h.Size(), len(b))
		}
		if err := fn(b[:h.Size()]); err != nil {
			return err
		}
		b = b[h.Size():]
	}
	return nil
}
