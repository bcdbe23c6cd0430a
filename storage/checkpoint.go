package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// Offset checkpoint files (recovery-point-offset-checkpoint,
// cleaner-offset-checkpoint) in Kafka's text format: a version line (0), a
// count line, then one "topic partition offset" line per partition.

// readOffsetCheckpoint reads an offset checkpoint file. A missing file is
// an empty map; one that does not parse is an error (lines whose numbers do
// not parse are skipped).
func readOffsetCheckpoint(path string) (map[TopicPartition]int64, error) {
	out := map[TopicPartition]int64{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	entries, err := parseCheckpoint(b, 3)
	if err != nil {
		return out, err
	}
	for _, f := range entries {
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil {
			out[TopicPartition{Topic: f[0], Partition: int32(p)}] = o
		}
	}
	return out, nil
}

// writeOffsetCheckpoint replaces an offset checkpoint file atomically and
// durably: a temporary file, fsync, rename, fsync of the directory.
func writeOffsetCheckpoint(path string, offsets map[TopicPartition]int64) error {
	tps := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	sortTopicPartitions(tps)
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(tps))
	for _, tp := range tps {
		fmt.Fprintf(&b, "%s %d %d\n", tp.Topic, tp.Partition, offsets[tp])
	}
	if err := writeFileAtomic(path, b.Bytes()); err != nil {
		return err
	}
	return mapIOError(syncDir(filepath.Dir(path)))
}

// sortTopicPartitions sorts by topic, then partition.
func sortTopicPartitions(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}
