package wire

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TagLeaderSegmentBase is a tagged field of a Fetch response partition
// (flexible versions) that Skein's leaders add for their followers only
// (replica id >= 0) when the returned batches begin one of their segments
// (the base is at or above the fetch offset): that segment's base offset,
// as 8 bytes big-endian. A follower rolls its log there
// too, so a compacted log copied from a leader keeps the leader's segments
// (and the replicas clean the same ranges to the same bytes). Consumers
// never get it; a follower that does not know it ignores it, as Kafka's
// rules for unknown tags say. The number is far above the tags Kafka
// defines for this structure.
const TagLeaderSegmentBase = 10000

// EncodeLeaderSegmentBase encodes base for TagLeaderSegmentBase.
func EncodeLeaderSegmentBase(base int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(base))
}

// LeaderSegmentBase reads TagLeaderSegmentBase from a partition's tags; -1
// when it is absent or malformed.
func LeaderSegmentBase(tags *kmsg.Tags) int64 {
	base := int64(-1)
	tags.Each(func(key uint32, v []byte) {
		if key == TagLeaderSegmentBase && len(v) == 8 {
			base = int64(binary.BigEndian.Uint64(v))
		}
	})
	return base
}
