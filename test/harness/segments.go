package harness

import (
	be "encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Batch is one record batch (magic 2) as a replica stores it in a .log
// file: its offsets and its bytes exactly as on disk.
type Batch struct {
	BaseOffset int64
	LastOffset int64
	Segment    string // file name, e.g. "00000000000000000040.log"
	Raw        []byte
}

// The v2 batch header fields ReadPartitionLog reads.
const (
	batchHeaderLen     = 61 // baseOffset ... recordCount
	batchLengthAt      = 8  // int32: bytes after this field
	batchMagicAt       = 16
	batchAttributesAt  = 21
	batchLastDeltaAt   = 23
	batchCountAt       = 57
	batchLogOverhead   = 12 // baseOffset + batchLength
	attrCompressionMsk = 0x07
	attrControl        = 0x20
)

// PartitionLog is what one replica holds of a partition on disk: the
// batches of its .log files in offset order.
type PartitionLog struct {
	Dir string
	// Start is the first offset held: the base offset of the first batch,
	// or, with no batch, of the first segment file (a log restarted at
	// its leader's log start holds nothing yet). End is one past the last
	// offset held (Start when there is no batch).
	Start, End int64
	Batches    []Batch
	// Holes lists offset ranges missing between batches ("from-to",
	// exclusive end); a non-compacted log has none.
	Holes []string
}

// ReadPartitionLog reads every .log file in a partition directory (the
// broker may be running: a batch cut short at a file's end is one being
// written and is left out). Files are ordered by their base offset (the
// zero-padded name). Only .log files count: ".deleted", ".cleaned",
// ".swap" and other files are not part of the log. A file whose batches
// start below the previous file's end (two files holding the same
// offsets, as a removed segment not yet deleted from disk would) is an
// error.
func ReadPartitionLog(dir string) (PartitionLog, error) {
	pl := PartitionLog{Dir: dir}
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return pl, err
	}
	sort.Strings(names)
	first := true
	for _, name := range names {
		data, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			return pl, fmt.Errorf("%s vanished while reading (segment deleted)", name)
		}
		if err != nil {
			return pl, err
		}
		base, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(name), ".log"), 10, 64)
		if err != nil {
			return pl, fmt.Errorf("segment file %s: name is not a base offset", name)
		}
		if first {
			pl.Start, pl.End, first = base, base, false
		}
		for len(data) >= batchLogOverhead {
			n := int(int32(be.BigEndian.Uint32(data[batchLengthAt:]))) + batchLogOverhead
			if n < batchHeaderLen || n > len(data) {
				break // being written, or garbage after a torn write
			}
			raw := data[:n]
			data = data[n:]
			if raw[batchMagicAt] != 2 {
				return pl, fmt.Errorf("%s: batch with magic %d", name, raw[batchMagicAt])
			}
			b := Batch{
				BaseOffset: int64(be.BigEndian.Uint64(raw)),
				Segment:    filepath.Base(name),
				Raw:        raw,
			}
			b.LastOffset = b.BaseOffset + int64(int32(be.BigEndian.Uint32(raw[batchLastDeltaAt:])))
			if len(pl.Batches) == 0 {
				pl.Start = b.BaseOffset
			} else if b.BaseOffset < pl.End {
				return pl, fmt.Errorf("%s: batch at %d overlaps the log before it (which ends at %d)", name, b.BaseOffset, pl.End)
			} else if b.BaseOffset > pl.End {
				pl.Holes = append(pl.Holes, fmt.Sprintf("%d-%d", pl.End, b.BaseOffset))
			}
			pl.End = b.LastOffset + 1
			pl.Batches = append(pl.Batches, b)
		}
	}
	return pl, nil
}

// Records decodes the batch's records (uncompressed batches only; a
// control batch has none that matter here and yields none).
func (b Batch) Records() ([]Stored, error) {
	raw := b.Raw
	attrs := be.BigEndian.Uint16(raw[batchAttributesAt:])
	if attrs&attrControl != 0 {
		return nil, nil
	}
	if attrs&attrCompressionMsk != 0 {
		return nil, fmt.Errorf("batch at %d: compressed (codec %d): not decoded", b.BaseOffset, attrs&attrCompressionMsk)
	}
	count := int(int32(be.BigEndian.Uint32(raw[batchCountAt:])))
	buf := raw[batchHeaderLen:]
	out := make([]Stored, 0, count)
	bad := func(what string) error {
		return fmt.Errorf("batch at %d record %d: %s", b.BaseOffset, len(out), what)
	}
	varint := func() (int64, bool) {
		v, n := be.Varint(buf)
		if n <= 0 {
			return 0, false
		}
		buf = buf[n:]
		return v, true
	}
	for range count {
		length, ok := varint()
		if !ok || length < 1 || int64(len(buf)) < length {
			return nil, bad("bad length")
		}
		rec := buf[:length]
		rest := buf[length:]
		buf = rec[1:]           // attributes (int8)
		_, ok1 := varint()      // timestamp delta
		delta, ok2 := varint()  // offset delta
		keyLen, ok3 := varint() // key
		if !ok1 || !ok2 || !ok3 || keyLen > int64(len(buf)) {
			return nil, bad("bad header")
		}
		if keyLen > 0 {
			buf = buf[keyLen:]
		}
		valLen, ok := varint()
		if !ok || valLen > int64(len(buf)) {
			return nil, bad("bad value length")
		}
		var value string
		if valLen > 0 {
			value = string(buf[:valLen])
		}
		out = append(out, Stored{Offset: b.BaseOffset + delta, Value: value})
		buf = rest
	}
	return out, nil
}

// Records decodes every record the replica holds, in offset order.
func (pl PartitionLog) Records() ([]Stored, error) {
	var out []Stored
	for _, b := range pl.Batches {
		recs, err := b.Records()
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", pl.Dir, b.Segment, err)
		}
		out = append(out, recs...)
	}
	return out, nil
}

// The v2 batch header fields the transaction helpers read.
const (
	batchProducerIDAt = 43 // int64
	attrTransactional = 0x10
)

// ProducerID is the batch's producer id (-1: none).
func (b Batch) ProducerID() int64 {
	return int64(be.BigEndian.Uint64(b.Raw[batchProducerIDAt:]))
}

// Transactional reports whether the batch is part of a transaction (its
// records or, for a control batch, the transaction's marker).
func (b Batch) Transactional() bool {
	return be.BigEndian.Uint16(b.Raw[batchAttributesAt:])&attrTransactional != 0
}

// Marker decodes a control batch's marker: ok is false for a batch of
// data records; commit tells a COMMIT marker (type 1) from an ABORT (type
// 0). Another control record type is an error.
func (b Batch) Marker() (commit, ok bool, err error) {
	raw := b.Raw
	if be.BigEndian.Uint16(raw[batchAttributesAt:])&attrControl == 0 {
		return false, false, nil
	}
	if n := int32(be.BigEndian.Uint32(raw[batchCountAt:])); n != 1 {
		return false, true, fmt.Errorf("control batch at %d holds %d records, want 1", b.BaseOffset, n)
	}
	buf := raw[batchHeaderLen:]
	bad := fmt.Errorf("control batch at %d: bad record", b.BaseOffset)
	varint := func() (int64, bool) {
		v, n := be.Varint(buf)
		if n <= 0 {
			return 0, false
		}
		buf = buf[n:]
		return v, true
	}
	if _, ok := varint(); !ok || len(buf) < 1 { // record length
		return false, true, bad
	}
	buf = buf[1:]           // attributes
	_, ok1 := varint()      // timestamp delta
	_, ok2 := varint()      // offset delta
	keyLen, ok3 := varint() // key: int16 version, int16 type
	if !ok1 || !ok2 || !ok3 || keyLen < 4 || int64(len(buf)) < keyLen {
		return false, true, bad
	}
	switch typ := int16(be.BigEndian.Uint16(buf[2:])); typ {
	case 0:
		return false, true, nil
	case 1:
		return true, true, nil
	default:
		return false, true, fmt.Errorf("control batch at %d: control record type %d", b.BaseOffset, typ)
	}
}

// Committed returns what a read_committed consumer reads of the replica
// (Kafka's rule): records of non-transactional batches, and those of a
// transactional batch once a COMMIT marker of its producer follows it;
// an ABORT marker drops the producer's pending records. open lists the
// producers (id -> first offset) whose transaction has no marker yet: the
// last stable offset is the lowest of those offsets.
func (pl PartitionLog) Committed() (recs []Stored, open map[int64]int64, err error) {
	pending := make(map[int64][]Stored)
	open = make(map[int64]int64)
	for _, b := range pl.Batches {
		commit, control, err := b.Marker()
		if err != nil {
			return nil, nil, fmt.Errorf("%s/%s: %w", pl.Dir, b.Segment, err)
		}
		pid := b.ProducerID()
		if control {
			if commit {
				recs = append(recs, pending[pid]...)
			}
			delete(pending, pid)
			delete(open, pid)
			continue
		}
		rs, err := b.Records()
		if err != nil {
			return nil, nil, fmt.Errorf("%s/%s: %w", pl.Dir, b.Segment, err)
		}
		if !b.Transactional() {
			recs = append(recs, rs...)
			continue
		}
		if _, ok := open[pid]; !ok {
			open[pid] = b.BaseOffset
		}
		pending[pid] = append(pending[pid], rs...)
	}
	// Committed records come out in marker order; sort by offset.
	sort.Slice(recs, func(i, j int) bool { return recs[i].Offset < recs[j].Offset })
	return recs, open, nil
}
