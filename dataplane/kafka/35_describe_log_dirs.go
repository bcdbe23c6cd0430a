package kafka

// DescribeLogDirs (API key 35), versions 1-4: the partitions this broker
// holds in its one log directory (the data dir), with their sizes, as
// kafka-log-dirs.sh and `skein reassign execute --wait` read them.
//
//   - Topics: the requested topics and partitions, or every hosted
//     partition when the list is null (v2+: empty is also "none asked").
//     Partitions not hosted here are left out, as in Kafka.
//   - Size is the bytes of the partition's segment files; OffsetLag is how
//     far the replica's log end is below its high watermark (0 for a
//     leader or a caught-up follower); IsFuture is always false (one log
//     directory, no intra-broker moves).
//   - v4: TotalBytes and UsableBytes of the directory's file system
//     (statfs); -1 when it cannot be read.

import (
	"context"
	"slices"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDescribeLogDirs(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeLogDirsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = h.Partitions.DataDir()
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir.Dir, &st); err == nil {
		dir.TotalBytes = int64(st.Blocks) * st.Bsize
		dir.UsableBytes = int64(st.Bavail) * st.Bsize
	}

	var want map[string][]int32 // nil: every partition
	if r.Topics != nil {
		want = map[string][]int32{}
		for _, t := range r.Topics {
			want[t.Topic] = append(want[t.Topic], t.Partitions...)
		}
	}
	byTopic := map[string][]*partition.Partition{}
	for _, p := range h.Partitions.Partitions() {
		if want != nil {
			parts, ok := want[p.Topic()]
			if !ok || !slices.Contains(parts, p.Index()) {
				continue
			}
		}
		byTopic[p.Topic()] = append(byTopic[p.Topic()], p)
	}
	names := make([]string, 0, len(byTopic))
	for name := range byTopic {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		parts := byTopic[name]
		slices.SortFunc(parts, func(a, b *partition.Partition) int { return int(a.Index()) - int(b.Index()) })
		t := kmsg.NewDescribeLogDirsResponseDirTopic()
		t.Topic = name
		for _, p := range parts {
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition = p.Index()
			rp.Size = p.Log().Size()
			rp.OffsetLag = max(p.HighWatermark()-p.Log().LogEndOffset(), 0)
			t.Partitions = append(t.Partitions, rp)
		}
		dir.Topics = append(dir.Topics, t)
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}
