package kafka

// OffsetFetch (API key 9), versions 0-8: served by the group coordinator.
//
//   - v0-v7 ask for one group; v8 for several (KIP-709), each answered
//     with its own code.
//   - Topics null (v2+) asks for every committed offset of the group.
//   - A partition without a commit: offset -1, leader epoch -1, metadata "".
//   - RequireStable (v7+, KIP-447): a partition with offsets pending in a
//     transaction answers UNSTABLE_OFFSET_COMMIT until its marker.
//   - v0-v1 have no group-level code: it goes on every partition.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleOffsetFetch(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	resp.Version = r.Version
	fetch := func(id string, topics []kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroup {
		if h.Groups == nil {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = id, kerr.CoordinatorNotAvailable.Code
			return g
		}
		if id == "" {
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = id, kerr.InvalidGroupID.Code
			return g
		}
		return h.Groups.FetchOffsets(id, topics, r.Version >= 7 && r.RequireStable)
	}
	if r.Version >= 8 {
		for _, g := range r.Groups {
			resp.Groups = append(resp.Groups, fetch(g.Group, g.Topics))
		}
		return resp, nil
	}
	var topics []kmsg.OffsetFetchRequestGroupTopic
	if r.Topics != nil || r.Version < 2 {
		topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(r.Topics))
		for _, t := range r.Topics {
			topics = append(topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	g := fetch(r.Group, topics)
	resp.ErrorCode = g.ErrorCode
	if g.ErrorCode != 0 {
		// Kafka answers the partitions asked with the group's error too.
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p, -1, -1, g.ErrorCode
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	for _, t := range g.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
