package kafka

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeTopicPartitions: ELR and last-known ELR are reported; topics
// in name order, unknown and invalid names answered per topic; paging by
// ResponsePartitionLimit and Cursor.
func TestDescribeTopicPartitions(t *testing.T) {
	img := metadataImage()
	p1 := img.Topics["t"].Partitions[1]
	p1.ELR, p1.LastKnownELR = []int32{2}, []int32{3}
	describe := func(limit int32, cursor *kmsg.DescribeTopicPartitionsRequestCursor, names ...string) *kmsg.DescribeTopicPartitionsResponse {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		req.ResponsePartitionLimit, req.Cursor = limit, cursor
		for _, n := range names {
			rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
			rt.Topic = n
			req.Topics = append(req.Topics, rt)
		}
		resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
		describeTopicPartitions(resp, img, req)
		return resp
	}
	// summary is "topic:error:partitions... | next-cursor".
	summary := func(resp *kmsg.DescribeTopicPartitionsResponse) string {
		var parts []string
		for _, dt := range resp.Topics {
			s := fmt.Sprintf("%s:%d:", *dt.Topic, dt.ErrorCode)
			for _, p := range dt.Partitions {
				s += fmt.Sprint(p.Partition)
			}
			parts = append(parts, s)
		}
		out := strings.Join(parts, " ")
		if c := resp.NextCursor; c != nil {
			out += fmt.Sprintf(" | %s/%d", c.Topic, c.Partition)
		}
		return out
	}

	resp := describe(0, nil)
	if got, want := summary(resp), "__consumer_offsets:0:0 t:0:01"; got != want {
		t.Fatalf("all topics: %s, want %s", got, want)
	}
	p := resp.Topics[1].Partitions[1]
	if p.ErrorCode != kerr.LeaderNotAvailable.Code || p.LeaderID != -1 || !slices.Equal(p.EligibleLeaderReplicas, []int32{2}) ||
		!slices.Equal(p.LastKnownELR, []int32{3}) || !slices.Equal(p.OfflineReplicas, []int32{2}) || p.ISR == nil {
		t.Fatalf("offline partition with an ELR: %+v", p)
	}
	if q := resp.Topics[1].Partitions[0]; q.EligibleLeaderReplicas == nil || len(q.EligibleLeaderReplicas) != 0 || q.LeaderID != 1 {
		t.Fatalf("partition without an ELR: %+v (want an empty, non-null list)", q)
	}
	for _, tc := range []struct {
		name   string
		limit  int32
		cursor *kmsg.DescribeTopicPartitionsRequestCursor
		topics []string
		want   string
	}{
		{"requested, unknown and invalid names, each once", 0, nil, []string{"t", "nope", "bad/name", "t"},
			fmt.Sprintf("bad/name:%d: nope:%d: t:0:01", kerr.InvalidTopicException.Code, kerr.UnknownTopicOrPartition.Code)},
		{"limit inside a topic", 2, nil, nil, "__consumer_offsets:0:0 t:0:0 | t/1"},
		{"limit at a topic's end", 1, nil, nil, "__consumer_offsets:0:0 | t/0"},
		{"cursor", 0, &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "t", Partition: 1}, nil, "t:0:1"},
	} {
		if got := summary(describe(tc.limit, tc.cursor, tc.topics...)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
