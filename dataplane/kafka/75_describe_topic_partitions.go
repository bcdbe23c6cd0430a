package kafka

// DescribeTopicPartitions (API key 75), version 0 (KIP-966), served from
// this broker's image: Metadata's partition fields plus the eligible leader
// replicas (EligibleLeaderReplicas) and LastKnownELR.
//
//   - Topics: the requested names, or every topic when the list is empty;
//     in name order, each name once. An unknown name is
//     UNKNOWN_TOPIC_OR_PARTITION, an invalid one INVALID_TOPIC_EXCEPTION.
//     No auto-creation.
//   - Paging: at most ResponsePartitionLimit partitions (at most
//     describeTopicPartitionsLimit; a limit <= 0 means that one) are
//     returned; NextCursor then names the first topic and partition left
//     out. Cursor starts the answer at its topic and partition: topics
//     before it are skipped.
//   - A partition without a leader is LEADER_NOT_AVAILABLE, as in
//     Metadata. Authorized operations are not computed (-2147483648).

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

// describeTopicPartitionsLimit is Kafka's max.request.partition.size.limit
// default: the most partitions one response carries.
const describeTopicPartitionsLimit = 2000

func (h *Handlers) handleDescribeTopicPartitions(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeTopicPartitionsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	describeTopicPartitions(resp, h.image(), r)
	return resp, nil
}

// describeTopicPartitions fills resp from img; a pure function.
func describeTopicPartitions(resp *kmsg.DescribeTopicPartitionsResponse, img *image.Image, r *kmsg.DescribeTopicPartitionsRequest) {
	var names []string
	if len(r.Topics) == 0 {
		names = img.TopicNames()
	} else {
		for _, rt := range r.Topics {
			names = append(names, rt.Topic)
		}
		slices.Sort(names)
		names = slices.Compact(names)
	}
	limit := int(r.ResponsePartitionLimit)
	if limit <= 0 || limit > describeTopicPartitionsLimit {
		limit = describeTopicPartitionsLimit
	}
	n := 0
	for _, name := range names {
		first := int32(0)
		if c := r.Cursor; c != nil {
			if name < c.Topic {
				continue
			}
			if name == c.Topic {
				first = max(c.Partition, 0)
			}
		}
		dt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		dt.Topic = stringPtr(name)
		dt.IsInternal = internalTopic(name)
		t := img.Topics[name]
		switch {
		case !validTopicName(name):
			dt.ErrorCode = kerr.InvalidTopicException.Code
		case t == nil:
			dt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			dt.TopicID = t.ID
			dt.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
			for _, p := range t.Partitions {
				if p.Partition < first {
					continue
				}
				if n == limit {
					resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: p.Partition}
					break
				}
				dt.Partitions = append(dt.Partitions, describedPartition(img, p))
				n++
			}
		}
		if resp.NextCursor != nil && len(dt.Partitions) == 0 {
			return // the cursor points at this topic's first partition
		}
		resp.Topics = append(resp.Topics, dt)
		if resp.NextCursor != nil {
			return
		}
	}
}

func describedPartition(img *image.Image, p *image.Partition) kmsg.DescribeTopicPartitionsResponseTopicPartition {
	dp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
	dp.Partition = p.Partition
	dp.LeaderID, dp.LeaderEpoch = p.Leader, p.LeaderEpoch
	orEmpty := func(v []int32) []int32 {
		if v == nil {
			return []int32{}
		}
		return v // the image is immutable: encoded as it is
	}
	dp.Replicas, dp.ISR = orEmpty(p.Replicas), orEmpty(p.ISR)
	dp.EligibleLeaderReplicas, dp.LastKnownELR = orEmpty(p.ELR), orEmpty(p.LastKnownELR)
	dp.OfflineReplicas = offlineReplicas(img, p.Replicas)
	if p.Leader < 0 {
		dp.ErrorCode = kerr.LeaderNotAvailable.Code
	}
	return dp
}
