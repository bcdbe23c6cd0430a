// Package storagetest builds record batches for tests.
package storagetest

import (
	"bytes"
	"encoding/binary"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/storage"
)

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
	return storage.SealBatch(b.AppendTo(nil))
}

// MakeTxnBatch is MakeBatch with the transactional attribute set: a batch
// of producerID's open transaction.
func MakeTxnBatch(values [][]byte, producerID int64, producerEpoch int16, baseSequence int32) []byte {
	b := MakeBatch(values, producerID, producerEpoch, baseSequence)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x10)
	return storage.SealBatch(b)
}

// KV is one record for MakeKeyedBatch: a nil Key is a record without a key,
// a nil Value a tombstone.
type KV struct {
	Key, Value []byte
}

// Compression codecs for MakeKeyedBatch (the batch attributes' low bits).
const (
	None   = 0
	Gzip   = 1
	Snappy = 2
	Lz4    = 3
	Zstd   = 4
)

var (
	compMu      sync.Mutex
	compressors = map[int8]kgo.Compressor{}
)

// MakeKeyedBatch returns one v2 batch of records with keys, compressed with
// codec the way franz-go producers compress, timestamps ts (ms), and the
// producer id, epoch and base sequence given (-1, -1, -1: not idempotent).
func MakeKeyedBatch(recs []KV, codec int8, producerID int64, producerEpoch int16, baseSequence int32, ts int64) []byte {
	var records []byte
	for i, kv := range recs {
		r := kmsg.Record{OffsetDelta: int32(i), Key: kv.Key, Value: kv.Value}
		body := r.AppendTo(nil)[1:]
		r.Length = int32(len(body))
		records = r.AppendTo(records)
	}
	if codec != None {
		var c kgo.CompressionCodec
		switch codec {
		case Gzip:
			c = kgo.GzipCompression()
		case Snappy:
			c = kgo.SnappyCompression()
		case Lz4:
			c = kgo.Lz4Compression()
		case Zstd:
			c = kgo.ZstdCompression()
		}
		compMu.Lock()
		comp := compressors[codec]
		if comp == nil {
			var err error
			if comp, err = kgo.DefaultCompressor(c); err != nil {
				panic(err)
			}
			compressors[codec] = comp
		}
		compMu.Unlock()
		out, used := comp.Compress(new(bytes.Buffer), records)
		if int8(used) != codec {
			panic("compressor used another codec")
		}
		records = append([]byte(nil), out...)
	}
	b := kmsg.RecordBatch{
		Magic:           2,
		Attributes:      int16(codec),
		LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp:  ts,
		MaxTimestamp:    ts,
		ProducerID:      producerID,
		ProducerEpoch:   producerEpoch,
		FirstSequence:   baseSequence,
		NumRecords:      int32(len(recs)),
		Records:         records,
	}
	return storage.SealBatch(b.AppendTo(nil))
}

// Record is one record read back by Records.
type Record struct {
	Offset     int64
	Key, Value []byte
}

// Records decodes concatenated batches (any codec) into their records.
func Records(batches []byte) ([]Record, error) {
	var out []Record
	dec := kgo.DefaultDecompressor()
	for len(batches) > 0 {
		var b kmsg.RecordBatch
		if err := b.ReadFrom(batches); err != nil {
			return nil, err
		}
		size := int(b.Length) + 12
		batches = batches[size:]
		if b.Attributes&0x20 != 0 {
			continue
		}
		raw := b.Records
		if codec := b.Attributes & 7; codec != 0 {
			d, err := dec.Decompress(raw, kgo.CompressionCodecType(codec))
			if err != nil {
				return nil, err
			}
			raw = append([]byte(nil), d...)
		}
		for len(raw) > 0 {
			var r kmsg.Record
			if err := r.ReadFrom(raw); err != nil {
				return nil, err
			}
			n := len(binary.AppendVarint(nil, int64(r.Length))) + int(r.Length)
			out = append(out, Record{Offset: b.FirstOffset + int64(r.OffsetDelta), Key: r.Key, Value: r.Value})
			raw = raw[n:]
		}
	}
	return out, nil
}

// CommittedRecords is what a read_committed consumer returns from batches
// (concatenated, in offset order) fetched with the aborted transactions
// aborted, the way Kafka's consumers filter them: an aborted transaction's
// producer is skipped from the batch reaching its first offset until its
// abort marker; control batches are never returned, nor anything at or
// above upTo (the last stable offset).
func CommittedRecords(batches []byte, aborted []storage.AbortedTxn, upTo int64) ([]Record, error) {
	aborted = append([]storage.AbortedTxn(nil), aborted...)
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	skipping := map[int64]bool{}
	var out []Record
	for len(batches) > 0 {
		h, err := storage.ParseBatchHeader(batches)
		if err != nil {
			return nil, err
		}
		b := batches[:h.Size()]
		batches = batches[h.Size():]
		if h.BaseOffset >= upTo {
			break
		}
		if h.Transactional() {
			for len(aborted) > 0 && aborted[0].FirstOffset <= h.LastOffset() {
				skipping[aborted[0].ProducerID] = true
				aborted = aborted[1:]
			}
			if h.Control() {
				if m, ok, err := storage.ParseControlBatch(b); err == nil && ok && !m.Commit() {
					delete(skipping, h.ProducerID)
				}
				continue
			}
			if skipping[h.ProducerID] {
				continue
			}
		}
		recs, err := Records(b)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Offset < upTo {
				out = append(out, r)
			}
		}
	}
	return out, nil
}
