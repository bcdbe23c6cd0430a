package group

// The records the coordinator keeps in its __consumer_offsets partition, in
// Kafka's own formats (so Kafka's tools could read them): committed offsets
// under an OffsetCommitKey (v1) with an OffsetCommitValue (v3), group
// metadata under a GroupMetadataKey (v2) with a GroupMetadataValue (v3). A
// null value is a tombstone (offset deleted, group deleted); compaction keeps
// the last record per key. Every encoding goes through kmsg.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record keys: versions 0 and 1 are offset commits, 2 group metadata.
const (
	offsetKeyVersion   = 1
	groupKeyVersion    = 2
	offsetValueVersion = 3
	groupValueVersion  = 3
)

// kv is one record to write: value nil is a tombstone.
type kv struct {
	key, value []byte
}

func offsetRecord(group, topic string, partition int32, o *offset) kv {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetKeyVersion
	k.Group, k.Topic, k.Partition = group, topic, partition
	r := kv{key: k.AppendTo(nil)}
	if o != nil {
		v := kmsg.NewOffsetCommitValue()
		v.Version = offsetValueVersion
		v.Offset = o.offset
		v.LeaderEpoch = o.leaderEpoch
		v.Metadata = o.metadata
		v.CommitTimestamp = o.commitMs
		r.value = v.AppendTo(nil)
	}
	return r
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = groupKeyVersion
	k.Group = group
	return k.AppendTo(nil)
}

// groupRecord is g's metadata: generation, protocol, leader, when it
// entered its state, and the members with their subscription for the
// selected protocol and their assignment.
func groupRecord(g *group) kv {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateSinceMs
	for _, id := range g.memberOrder() {
		m := g.members[id]
		mm := kmsg.NewGroupMetadataValueMember()
		mm.MemberID = m.id
		mm.InstanceID = m.instanceIDPtr()
		mm.ClientID = m.clientID
		mm.ClientHost = m.clientHost
		mm.RebalanceTimeoutMillis = int32(m.rebalance.Milliseconds())
		mm.SessionTimeoutMillis = int32(m.session.Milliseconds())
		mm.Subscription = m.metadataFor(g.protocol)
		mm.Assignment = m.assignment
		v.Members = append(v.Members, mm)
	}
	return kv{key: groupKey(g.id), value: v.AppendTo(nil)}
}

// buildBatch encodes records as one uncompressed v2 record batch (the
// leader overwrites base offset and leader epoch on append).
func buildBatch(recs []kv, nowMs int64) []byte {
	var raw []byte
	for i, r := range recs {
		rec := kmsg.NewRecord()
		rec.OffsetDelta = int32(i)
		rec.Key = r.key
		rec.Value = r.value
		// Length is the size of what follows it: encode once to measure.
		body := len(rec.AppendTo(nil)) - 1 // Length 0 takes one varint byte
		rec.Length = int32(body)
		raw = rec.AppendTo(raw)
	}
	b := kmsg.NewRecordBatch()
	b.PartitionLeaderEpoch = -1
	b.Magic = 2
	b.LastOffsetDelta = int32(len(recs) - 1)
	b.FirstTimestamp = nowMs
	b.MaxTimestamp = nowMs
	b.ProducerID = -1
	b.ProducerEpoch = -1
	b.FirstSequence = -1
	b.NumRecords = int32(len(recs))
	b.Records = raw
	out := b.AppendTo(nil)
	// Length counts from the partition leader epoch; the CRC-32C covers
	// the attributes to the end.
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], castagnoli))
	return out
}

// parsed is one record read back from the partition.
type parsed struct {
	offset int64
	// Exactly one of these is set.
	offsetKey *kmsg.OffsetCommitKey
	groupKey  *kmsg.GroupMetadataKey
	// value nil: tombstone.
	offsetValue *kmsg.OffsetCommitValue
	groupValue  *kmsg.GroupMetadataValue
}

// decompressor reads compressed batches (the coordinator writes none, but
// a log written by another implementation, or rewritten by a tool, may
// hold some).
var decompressor = kgo.DefaultDecompressor()

// parseBatches calls fn for every record of the whole batches in b and
// returns the offset after the last batch parsed. Control batches are
// skipped (no transactions write here).
func parseBatches(b []byte, fn func(parsed)) (next int64, err error) {
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
		if batch.Attributes&0x20 != 0 { // control batch
			continue
		}
		raw := batch.Records
		if codec := batch.Attributes & 0x07; codec != 0 {
			var err error
			if raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(codec)); err != nil {
				return next, fmt.Errorf("decompress batch at offset %d: %w", batch.FirstOffset, err)
			}
		}
		for i := int32(0); i < batch.NumRecords && len(raw) > 0; i++ {
			l, n := binary.Varint(raw)
			if n <= 0 || int(l)+n > len(raw) || l < 0 {
				return next, errors.New("truncated record")
			}
			var rec kmsg.Record
			if err := rec.ReadFrom(raw[:n+int(l)]); err != nil {
				return next, fmt.Errorf("record: %w", err)
			}
			raw = raw[n+int(l):]
			// The value is copied: decoded byte fields (subscriptions,
			// assignments) alias it, and the caller reuses b.
			p, ok := parseRecord(rec.Key, bytes.Clone(rec.Value))
			if !ok {
				continue
			}
			p.offset = batch.FirstOffset + int64(rec.OffsetDelta)
			fn(p)
		}
	}
	return next, nil
}

// parseRecord decodes one key/value; ok is false for keys it does not know
// (other record types Kafka may write; ignored, as Kafka does).
func parseRecord(key, value []byte) (parsed, bool) {
	if len(key) < 2 {
		return parsed{}, false
	}
	switch v := int16(binary.BigEndian.Uint16(key)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(key) != nil {
			return parsed{}, false
		}
		p := parsed{offsetKey: &k}
		if value != nil {
			var ov kmsg.OffsetCommitValue
			if ov.ReadFrom(value) != nil {
				return parsed{}, false
			}
			p.offsetValue = &ov
		}
		return p, true
	case 2:
		var k kmsg.GroupMetadataKey
		if k.ReadFrom(key) != nil {
			return parsed{}, false
		}
		p := parsed{groupKey: &k}
		if value != nil {
			var gv kmsg.GroupMetadataValue
			if gv.ReadFrom(value) != nil {
				return parsed{}, false
			}
			p.groupValue = &gv
		}
		return p, true
	}
	return parsed{}, false
}
