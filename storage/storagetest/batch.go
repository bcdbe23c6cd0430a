// Package storagetest builds record batches for tests.
package storagetest

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MakeBatch returns one uncompressed v2 record batch holding values as
// record values (no keys), with the producer id, epoch and base sequence
// given (-1, -1, -1 for a non-idempotent batch). Base offset and leader
// epoch are 0; timestamps are now.
func MakeBatch(values [][]byte, producerID int64, producerEpoch int16, baseSequence int32) []byte {
	return MakeBatchAt(values, producerID, producerEpoch, baseSequence, time.Now().UnixMilli())
}

// MakeBatchAt is MakeBatch with every record's timestamp set to ts (ms).
func MakeBatchAt(values [][]byte, producerID int64, producerEpoch int16, baseSequence int32, ts int64) []byte {
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: v}
		body := r.AppendTo(nil)[1:] // without the one-byte zero length
		r.Length = int32(len(body))
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  ts,
		MaxTimestamp:    ts,
		ProducerID:      producerID,
		ProducerEpoch:   producerEpoch,
		FirstSequence:   baseSequence,
		NumRecords:      int32(len(values)),
		Records:         records,
	}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}
