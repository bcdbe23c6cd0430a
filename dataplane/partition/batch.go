package partition

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/skein-io/skein/storage"
)

// Byte layout of a v2 record batch header (Kafka's format; these offsets are
// part of the wire and disk format and never change). The CRC-32C covers
// everything from the attributes to the end of the batch, so the base offset
// and partition leader epoch can be overwritten without recomputing it.
const (
	batchOffsetMagic      = 16
	batchOffsetCRC        = 17
	batchOffsetAttributes = 21
	batchOffsetMaxTime    = 35

	attrTimestampLogAppend = 0x08
	attrTransactional      = 0x10
	attrControl            = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkProduceBatch validates the records of one partition in a produce
// request: exactly one v2 batch (as Kafka requires from produce v3 on), no
// larger than maxMessageBytes, with a valid CRC, and not a control batch
// (markers come from WriteTxnMarkers only); a transactional batch must
// carry a producer id. It reads only the header and the CRC; records are
// never decoded.
func checkProduceBatch(b []byte, maxMessageBytes int32) error {
	if len(b) < storage.BatchHeaderSize {
		return fmt.Errorf("%w: %d bytes is shorter than a batch header", storage.ErrCorruptBatch, len(b))
	}
	if maxMessageBytes > 0 && len(b) > int(maxMessageBytes) {
		return fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", storage.ErrBatchTooLarge, len(b), maxMessageBytes)
	}
	if magic := int8(b[batchOffsetMagic]); magic != 2 {
		return fmt.Errorf("%w: magic %d", ErrUnsupportedMessageFormat, magic)
	}
	h, err := storage.ParseBatchHeader(b)
	switch {
	case err != nil:
		return err
	case h.Size() > int64(len(b)):
		return fmt.Errorf("%w: batch length field says %d bytes, %d present", storage.ErrCorruptBatch, h.Size(), len(b))
	case h.Size() < int64(len(b)):
		return fmt.Errorf("%w: produce data must be exactly one record batch", ErrInvalidRecord)
	}
	if err := storage.ValidateBatch(b); err != nil {
		return err
	}
	if h.Attributes&attrTransactional != 0 && h.ProducerID < 0 {
		return fmt.Errorf("%w: transactional batch without a producer id", ErrInvalidTxnState)
	}
	if h.Attributes&attrControl != 0 {
		return fmt.Errorf("%w: clients may not produce control batches", ErrInvalidRecord)
	}
	return nil
}

// stampLogAppendTime sets the batch's timestamp type to LogAppendTime and its
// max timestamp to now (consumers then read every record's timestamp as now),
// and recomputes the CRC. b must have passed checkProduceBatch.
func stampLogAppendTime(b []byte, nowMs int64) {
	attrs := binary.BigEndian.Uint16(b[batchOffsetAttributes:])
	binary.BigEndian.PutUint16(b[batchOffsetAttributes:], attrs|attrTimestampLogAppend)
	binary.BigEndian.PutUint64(b[batchOffsetMaxTime:], uint64(nowMs))
	storage.SealBatch(b)
}
