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

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/storage"
)

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
	r, _ := appendOffsetRecord(nil, group, topic, partition, o)
	return r
}

// offsetRecordSize is about what an offset commit record of group and
// topic takes in appendOffsetRecord's buffer, metadata aside.
func offsetRecordSize(group, topic string) int { return 40 + len(group) + len(topic) }

// appendOffsetRecord is offsetRecord encoding the key and value at the end
// of buf (one buffer for the records of a whole commit): the record's
// slices alias the returned buf, which must not be modified before they
// are written.
func appendOffsetRecord(buf []byte, group, topic string, partition int32, o *offset) (kv, []byte) {
	k := kmsg.NewOffsetCommitKey()
	k.Version = offsetKeyVersion
	k.Group, k.Topic, k.Partition = group, topic, partition
	at := len(buf)
	buf = k.AppendTo(buf)
	var r kv
	keyEnd := len(buf)
	if o != nil {
		v := kmsg.NewOffsetCommitValue()
		v.Version = offsetValueVersion
		v.Offset = o.offset
		v.LeaderEpoch = o.leaderEpoch
		v.Metadata = o.metadata
		v.CommitTimestamp = o.commitMs
		buf = v.AppendTo(buf)
		r.value = buf[keyEnd:len(buf):len(buf)]
	}
	r.key = buf[at:keyEnd:keyEnd]
	return r, buf
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

// batchHeaderSize is the size of a v2 record batch without its records.
const batchHeaderSize = 61

// buildBatch encodes records as one uncompressed v2 record batch (the
// leader overwrites base offset and leader epoch on append), in one
// allocation: kmsg encodes the header (records section empty) and then
// each record right after it.
func buildBatch(recs []kv, nowMs int64) []byte {
	return buildProducerBatch(recs, nowMs, -1, -1, -1, false)
}

// buildProducerBatch is buildBatch with producer fields; transactional sets
// the batch's transactional attribute (a TxnOffsetCommit's batch).
func buildProducerBatch(recs []kv, nowMs int64, producerID int64, epoch int16, firstSeq int32, transactional bool) []byte {
	size := batchHeaderSize
	for _, r := range recs {
		// Length, attributes, timestamp delta, offset delta, key and
		// value lengths, header count: at most 23 bytes.
		size += len(r.key) + len(r.value) + 24
	}
	b := kmsg.NewRecordBatch()
	b.PartitionLeaderEpoch = -1
	b.Magic = 2
	b.LastOffsetDelta = int32(len(recs) - 1)
	b.FirstTimestamp = nowMs
	b.MaxTimestamp = nowMs
	b.ProducerID = producerID
	b.ProducerEpoch = epoch
	b.FirstSequence = firstSeq
	if transactional {
		b.Attributes |= 0x10
	}
	b.NumRecords = int32(len(recs))
	out := b.AppendTo(make([]byte, 0, size))
	rec := kmsg.NewRecord()
	for i, r := range recs {
		rec.OffsetDelta = int32(i)
		rec.Key = r.key
		rec.Value = r.value
		// Length is the size of what follows it: encode once with
		// Length 0 (one varint byte) to measure, then again in place.
		at := len(out)
		rec.Length = 0
		out = rec.AppendTo(out)
		rec.Length = int32(len(out) - at - 1)
		out = rec.AppendTo(out[:at])
	}
	return storage.SealBatch(out)
}

// encodeBatch encodes b with its length and CRC filled in.
func encodeBatch(b *kmsg.RecordBatch) []byte {
	return storage.SealBatch(b.AppendTo(nil))
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
	// txnProducer is the producer id of a record of a transactional batch
	// (a TxnOffsetCommit, pending until its marker), -1 otherwise.
	txnProducer int64
	// control is set for a transaction marker (no key or value is set):
	// txnProducer's transaction ends, committed or not.
	control bool
	commit  bool
	// txnEpoch and txnNextSeq are the producer epoch of txnProducer's
	// batch and the sequence after it.
	txnEpoch   int16
	txnNextSeq int32
}

// decompressor reads compressed batches (the coordinator writes none, but
// a log written by another implementation, or rewritten by a tool, may
// hold some).
var decompressor = kgo.DefaultDecompressor()

// malformed describes records the load skipped: a batch that does not
// decode (or decompress) loses its records, a record that does not decode
// is skipped alone when the batch framing still holds.
type malformed struct {
	records int   // records (or whole batches) skipped
	first   int64 // offset of the first skipped one
	err     error // why the first was skipped
	stopped bool  // the load stopped at batches that do not frame
}

func (m *malformed) add(offset int64, n int, err error) {
	if m.records == 0 {
		m.first, m.err = offset, err
	}
	m.records += n
}

// parseBatches calls fn for every record of the whole batches in b and
// returns the offset after the last batch parsed. Control batches are
// skipped (no transactions write here). Records or batches that do not
// decode are counted in bad and skipped: one malformed record must not
// keep a whole offsets partition from loading. err is only for framing:
// b does not hold whole batches.
func parseBatches(b []byte, bad *malformed, fn func(parsed)) (next int64, err error) {
	return parseBatchesWith(b, bad, nil, fn)
}

// recordParser lets parseBatchesWith decode offset commit records (nearly
// every record of an offsets partition) without allocating: into its own
// key and value, reused, whose strings alias the batches. The parsed
// handed to fn then is only valid during the call, and fn copies what it
// keeps. Group metadata records are decoded as parseRecord does.
type recordParser struct {
	k kmsg.OffsetCommitKey
	v kmsg.OffsetCommitValue
}

// parse is parseRecord, reusing ps for offset commit records.
func (ps *recordParser) parse(key, value []byte) (parsed, error) {
	if ps == nil || len(key) < 2 {
		return parseRecord(key, value)
	}
	v := int16(binary.BigEndian.Uint16(key))
	if v != 0 && v != 1 {
		return parseRecord(key, value)
	}
	ps.k = kmsg.OffsetCommitKey{}
	if err := ps.k.UnsafeReadFrom(key); err != nil {
		return parsed{}, fmt.Errorf("offset commit key v%d: %w", v, err)
	}
	p := parsed{offsetKey: &ps.k}
	if value != nil {
		ps.v = kmsg.OffsetCommitValue{}
		if err := ps.v.UnsafeReadFrom(value); err != nil {
			return parsed{}, fmt.Errorf("offset commit value: %w", err)
		}
		p.offsetValue = &ps.v
	}
	return p, nil
}

// parseBatchesWith is parseBatches decoding with ps (nil: every parsed is
// the caller's to keep).
func parseBatchesWith(b []byte, bad *malformed, ps *recordParser, fn func(parsed)) (next int64, err error) {
	next = -1
	for len(b) >= 12 {
		size := int(binary.BigEndian.Uint32(b[8:12])) + 12
		if size > len(b) || size < 61 {
			return next, fmt.Errorf("truncated batch: %d of %d bytes", len(b), size)
		}
		whole := b[:size]
		b = b[size:]
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(whole); err != nil {
			// The framing fields storage checked still hold: the base
			// offset and the last offset delta.
			first := int64(binary.BigEndian.Uint64(whole[0:8]))
			bad.add(first, 1, fmt.Errorf("batch: %w", err))
			next = first + int64(int32(binary.BigEndian.Uint32(whole[23:27]))) + 1
			continue
		}
		next = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
		if batch.Attributes&0x20 != 0 { // control batch: a transaction marker
			if commit, ok := controlType(batch); ok {
				fn(parsed{offset: batch.FirstOffset, control: true, commit: commit, txnProducer: batch.ProducerID})
			}
			continue
		}
		txnProducer := int64(-1)
		if batch.Attributes&0x10 != 0 {
			txnProducer = batch.ProducerID
		}
		raw := batch.Records
		if codec := batch.Attributes & 0x07; codec != 0 {
			var err error
			if raw, err = decompressor.Decompress(raw, kgo.CompressionCodecType(codec)); err != nil {
				bad.add(batch.FirstOffset, max(int(batch.NumRecords), 1), fmt.Errorf("decompress: %w", err))
				continue
			}
		}
		for i := int32(0); i < batch.NumRecords && len(raw) > 0; i++ {
			l, n := binary.Varint(raw)
			if n <= 0 || l < 0 || l > int64(len(raw)-n) {
				// The rest of the batch cannot be framed.
				bad.add(batch.FirstOffset+int64(i), int(batch.NumRecords-i), errors.New("truncated record"))
				break
			}
			rec := raw[:n+int(l)]
			raw = raw[n+int(l):]
			// Key and value alias b (the caller reuses it): parseRecord
			// copies what it keeps.
			var r kmsg.Record
			if err := r.UnsafeReadFrom(rec); err != nil {
				bad.add(batch.FirstOffset+int64(i), 1, fmt.Errorf("record: %w", err))
				continue
			}
			p, err := ps.parse(r.Key, r.Value)
			off := batch.FirstOffset + int64(r.OffsetDelta)
			if err != nil {
				bad.add(off, 1, err)
				continue
			}
			if p.offsetKey == nil && p.groupKey == nil {
				continue // a record type this coordinator does not use
			}
			p.offset = off
			p.txnProducer = txnProducer
			p.txnEpoch, p.txnNextSeq = batch.ProducerEpoch, batch.FirstSequence+batch.NumRecords
			fn(p)
		}
	}
	return next, nil
}

// parseRecord decodes one key/value. Keys of versions it does not know
// (other record types Kafka may write) give an empty parsed and no error:
// they are ignored, as Kafka does. A known key or its value that does not
// decode is an error. What it returns does not alias key or value.
func parseRecord(key, value []byte) (parsed, error) {
	if len(key) < 2 {
		return parsed{}, fmt.Errorf("record key of %d bytes", len(key))
	}
	switch v := int16(binary.BigEndian.Uint16(key)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return parsed{}, fmt.Errorf("offset commit key v%d: %w", v, err)
		}
		p := parsed{offsetKey: &k}
		if value != nil {
			var ov kmsg.OffsetCommitValue
			if err := ov.ReadFrom(value); err != nil {
				return parsed{}, fmt.Errorf("offset commit value: %w", err)
			}
			p.offsetValue = &ov
		}
		return p, nil
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return parsed{}, fmt.Errorf("group metadata key: %w", err)
		}
		p := parsed{groupKey: &k}
		if value != nil {
			// Decoded byte fields (subscriptions, assignments) alias the
			// value: they get a copy of their own.
			value = bytes.Clone(value)
			var gv kmsg.GroupMetadataValue
			if err := gv.ReadFrom(value); err != nil {
				return parsed{}, fmt.Errorf("group metadata value: %w", err)
			}
			p.groupValue = &gv
		}
		return p, nil
	}
	return parsed{}, nil
}

// controlType reads the type of a control batch's record (its key:
// version, type; 0 abort, 1 commit).
func controlType(batch kmsg.RecordBatch) (commit, ok bool) {
	raw := batch.Records
	l, n := binary.Varint(raw)
	if n <= 0 || l < 0 || l > int64(len(raw)-n) {
		return false, false
	}
	var r kmsg.Record
	if err := r.ReadFrom(raw[:n+int(l)]); err != nil || len(r.Key) < 4 {
		return false, false
	}
	switch binary.BigEndian.Uint16(r.Key[2:4]) {
	case 0:
		return false, true
	case 1:
		return true, true
	}
	return false, false
}
