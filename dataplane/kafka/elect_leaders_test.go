package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// TestElectLeadersWithoutController: every requested partition, and the
// top-level code (v1+), say NOT_CONTROLLER (retriable), at every version.
func TestElectLeadersWithoutController(t *testing.T) {
	h := newImageHandlers(t, metadataImage(), Config{NodeID: 1})
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrElectLeadersRequest()
		req.TimeoutMillis = 1000
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{0, 1}
		req.Topics = append(req.Topics, rt)
		resp, err := h.handleElectLeaders(context.Background(), request(req, v))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, v)
		er := resp.(*kmsg.ElectLeadersResponse)
		if er.Version != v || len(er.Topics) != 1 || er.Topics[0].Topic != "t" || len(er.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, er)
		}
		for _, p := range er.Topics[0].Partitions {
			if p.ErrorCode != kerr.NotController.Code {
				t.Fatalf("v%d partition %d: code %d", v, p.Partition, p.ErrorCode)
			}
		}
		if v >= 1 && er.ErrorCode != kerr.NotController.Code {
			t.Fatalf("v%d: top-level code %d", v, er.ErrorCode)
		}
	}
}

func TestElectionVisible(t *testing.T) {
	img := image.New()
	img.Topics["t"] = &image.Topic{Name: "t", Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1},
		{Partition: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 2},
		{Partition: 2, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: -1},
	}}
	for _, tc := range []struct {
		topic     string
		partition int32
		preferred bool
		want      bool
	}{
		{"t", 0, true, true},
		{"t", 1, true, false},
		{"t", 1, false, true},
		{"t", 2, false, false},
		{"gone", 0, true, true}, // deleted meanwhile: nothing to wait for
	} {
		if got := electionVisible(img, tc.topic, tc.partition, tc.preferred); got != tc.want {
			t.Errorf("%s-%d preferred=%v: %v, want %v", tc.topic, tc.partition, tc.preferred, got, tc.want)
		}
	}
}
