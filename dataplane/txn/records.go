package txn

// The records of __transaction_state, in Kafka's TransactionLog format so
// Kafka's tools could read them: key TxnMetadataKey v0 (the transactional
// id), value TxnMetadataValue v0 (producer id and epoch, timeout, state,
// partitions, last update and start timestamps); a null value is a
// tombstone. Each write is one uncompressed batch of one record.

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/storage"
)

const (
	keyVersion   = 0
	valueVersion = 0
)

func encodeKey(id string) []byte {
	k := kmsg.NewTxnMetadataKey()
	k.Version = keyVersion
	k.TransactionalID = id
	return k.AppendTo(nil)
}

// encodeValue is m as a TxnMetadataValue: its partitions sorted, as the
// record a replica would rebuild.
func encodeValue(m *txnMeta) []byte {
	v := kmsg.NewTxnMetadataValue()
	v.Version = valueVersion
	v.ProducerID = m.producerID
	v.ProducerEpoch = m.epoch
	v.TimeoutMillis = int32(m.timeout / time.Millisecond)
	v.State = kmsg.TransactionState(m.state)
	byTopic := map[string][]int32{}
	for tp := range m.partitions {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	for _, t := range sortedKeys(byTopic) {
		vt := kmsg.NewTxnMetadataValueTopic()
		vt.Topic = t
		vt.Partitions = byTopic[t]
		slices.Sort(vt.Partitions)
		v.Topics = append(v.Topics, vt)
	}
	v.LastUpdateTimestamp = m.lastUpdateMs
	v.StartTimestamp = m.startMs
	return v.AppendTo(nil)
}

// decodeRecord parses one record: m nil is a tombstone.
func decodeRecord(key, value []byte) (string, *txnMeta, error) {
	var k kmsg.TxnMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return "", nil, fmt.Errorf("transaction metadata key: %w", err)
	}
	if k.Version != 0 {
		return "", nil, fmt.Errorf("transaction metadata key version %d", k.Version)
	}
	if value == nil {
		return k.TransactionalID, nil, nil
	}
	var v kmsg.TxnMetadataValue
	if len(value) >= 2 {
		v.Version = int16(binary.BigEndian.Uint16(value))
	}
	if err := v.ReadFrom(value); err != nil {
		return "", nil, fmt.Errorf("transaction metadata value: %w", err)
	}
	if v.State < kmsg.TransactionStateEmpty || v.State > kmsg.TransactionStatePrepareEpochFence {
		return "", nil, fmt.Errorf("transaction %q: unknown state %d", k.TransactionalID, v.State)
	}
	m := &txnMeta{
		id:             k.TransactionalID,
		producerID:     v.ProducerID,
		epoch:          v.ProducerEpoch,
		lastProducerID: -1,
		lastEpoch:      -1,
		timeout:        time.Duration(v.TimeoutMillis) * time.Millisecond,
		state:          State(v.State),
		partitions:     map[TopicPartition]struct{}{},
		lastUpdateMs:   v.LastUpdateTimestamp,
		startMs:        v.StartTimestamp,
		written:        true,

		reservedProducerID: -1,
	}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			m.partitions[TopicPartition{t.Topic, p}] = struct{}{}
		}
	}
	return k.TransactionalID, m, nil
}

// buildBatch is one uncompressed v2 batch of one record (the leader sets
// base offset and leader epoch on append).
func buildBatch(key, value []byte, nowMs int64) []byte {
	b := kmsg.NewRecordBatch()
	b.PartitionLeaderEpoch = -1
	b.Magic = 2
	b.FirstTimestamp = nowMs
	b.MaxTimestamp = nowMs
	b.ProducerID = -1
	b.ProducerEpoch = -1
	b.FirstSequence = -1
	b.NumRecords = 1
	out := b.AppendTo(nil)
	rec := kmsg.NewRecord()
	rec.Key, rec.Value = key, value
	at := len(out)
	rec.Length = 0
	out = rec.AppendTo(out)
	rec.Length = int32(len(out) - at - 1)
	out = rec.AppendTo(out[:at])
	return storage.SealBatch(out)
}

var decompressor = kgo.DefaultDecompressor()

// forEachRecord calls fn for each record of the whole batches in b (not
// for control batches) and returns the offset after the last batch.
func forEachRecord(b []byte, fn func(key, value []byte)) (next int64, err error) {
	next = -1
	for len(b) >= 12 {
		size := int(binary.BigEndian.Uint32(b[8:12])) + 12
		if size > len(b) || size < 61 {
			return next, fmt.Errorf("truncated batch: %d of %d bytes", len(b), size)
		}
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b[:size]); err != nil {
			return next, fmt.Errorf("batch: %w", err)
		}
		b = b[size:]
		next = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
		if batch.Attributes&0x20 != 0 {
			continue
		}
		raw := batch.Records
		if codec := batch.Attributes & 0x07; codec != 0 {
			if raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(codec)); err != nil {
				return next, fmt.Errorf("decompress: %w", err)
			}
		}
		for i := int32(0); i < batch.NumRecords && len(raw) > 0; i++ {
			l, n := binary.Varint(raw)
			if n <= 0 || l < 0 || l > int64(len(raw)-n) {
				return next, fmt.Errorf("truncated record")
			}
			var rec kmsg.Record
			if err := rec.ReadFrom(raw[:n+int(l)]); err != nil {
				return next, fmt.Errorf("record: %w", err)
			}
			raw = raw[n+int(l):]
			fn(rec.Key, rec.Value)
		}
	}
	return next, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
