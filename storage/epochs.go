package storage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// leaderEpochFile is the leader epoch cache, in Kafka's checkpoint format.
const leaderEpochFile = "leader-epoch-checkpoint"

// EpochEntry says the leader of Epoch appended its first record at StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is a log's leader epoch history, ordered by epoch.
type epochCache struct {
	dir     string
	entries []EpochEntry
}

// loadEpochCache reads dir's checkpoint; ok is false when it is missing or
// does not parse (the caller rebuilds the cache from the log).
func loadEpochCache(dir string) (c *epochCache, ok bool, err error) {
	c = &epochCache{dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, leaderEpochFile))
	if err != nil {
		if os.IsNotExist(err) {
			return c, false, nil
		}
		return nil, false, err
	}
	entries, err := parseCheckpoint(b, 2)
	if err != nil {
		return c, false, nil
	}
	for _, f := range entries {
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return &epochCache{dir: dir}, false, nil
		}
		c.entries = append(c.entries, EpochEntry{Epoch: int32(e), StartOffset: o})
	}
	return c, true, nil
}

// consistent says the cache may describe a log ending at logEnd whose
// first and last batches are first and last (when it has any): epochs and
// start offsets strictly increase, none starts at or past the log end, the
// epoch covering the first batch is that batch's and the latest epoch is
// the last batch's. (Damage in between is not seen: that would need every
// header read.)
func (c *epochCache) consistent(logEnd int64, first, last BatchHeader, nonEmpty bool) bool {
	for i, e := range c.entries {
		if e.Epoch < 0 || e.StartOffset < 0 || e.StartOffset >= logEnd {
			return false
		}
		if i > 0 && (e.Epoch <= c.entries[i-1].Epoch || e.StartOffset <= c.entries[i-1].StartOffset) {
			return false
		}
	}
	if !nonEmpty {
		return true
	}
	covering := int32(-1)
	for _, e := range c.entries {
		if e.StartOffset <= first.BaseOffset {
			covering = e.Epoch
		}
	}
	if first.PartitionLeaderEpoch >= 0 && covering != first.PartitionLeaderEpoch {
		return false
	}
	latest, ok := c.latest()
	return last.PartitionLeaderEpoch < 0 || ok && latest.Epoch == last.PartitionLeaderEpoch
}

// rebuild replaces the entries with the epochs of the batches fn visits
// (in offset order) and writes the checkpoint.
func (c *epochCache) rebuild(scan func(func(BatchHeader)) error) error {
	c.entries = nil
	if err := scan(func(h BatchHeader) {
		if h.PartitionLeaderEpoch < 0 {
			return
		}
		if l, ok := c.latest(); ok && l.Epoch >= h.PartitionLeaderEpoch {
			return
		}
		c.entries = append(c.entries, EpochEntry{Epoch: h.PartitionLeaderEpoch, StartOffset: h.BaseOffset})
	}); err != nil {
		return err
	}
	return c.write()
}

func (c *epochCache) latest() (EpochEntry, bool) {
	if len(c.entries) == 0 {
		return EpochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

// assign records that epoch starts at offset, if epoch is new.
func (c *epochCache) assign(epoch int32, offset int64) error {
	if epoch < 0 {
		return nil
	}
	if l, ok := c.latest(); ok && l.Epoch >= epoch {
		return nil
	}
	c.entries = append(c.entries, EpochEntry{Epoch: epoch, StartOffset: offset})
	return c.write()
}

// truncateFromEnd drops epochs that start at or after endOffset.
func (c *epochCache) truncateFromEnd(endOffset int64) error {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= endOffset {
		n--
	}
	if n == len(c.entries) {
		return nil
	}
	c.entries = c.entries[:n]
	return c.write()
}

// endOffsetFor returns the end offset of epoch as Kafka's
// OffsetForLeaderEpoch defines it: the start of the next larger epoch, or
// logEnd for the latest. It returns the largest epoch <= the requested one.
func (c *epochCache) endOffsetFor(epoch int32, logEnd int64) (int32, int64) {
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].Epoch <= epoch {
			if i == len(c.entries)-1 {
				return c.entries[i].Epoch, logEnd
			}
			return c.entries[i].Epoch, c.entries[i+1].StartOffset
		}
	}
	return -1, -1
}

func (c *epochCache) write() error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return writeFileAtomic(filepath.Join(c.dir, leaderEpochFile), b.Bytes())
}

// parseCheckpoint reads Kafka's checkpoint format: a version line (0), a
// count line, then count lines of fields space-separated fields each.
func parseCheckpoint(b []byte, fields int) ([][]string, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("checkpoint: bad header")
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n != len(lines)-2 {
		return nil, fmt.Errorf("checkpoint: count %q does not match %d entries", lines[1], len(lines)-2)
	}
	out := make([][]string, 0, n)
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) != fields {
			return nil, fmt.Errorf("checkpoint: line %q", l)
		}
		out = append(out, f)
	}
	return out, nil
}
