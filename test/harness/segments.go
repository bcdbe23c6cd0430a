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
