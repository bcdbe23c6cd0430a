package kafka

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

// listenersImage is metadataImage with named listeners: broker 1 has
// INTERNAL (h1:9092) and EXTERNAL (e1:19092), broker 3 only INTERNAL, and
// broker 4 registered before named listeners (one address, PLAINTEXT).
func listenersImage() *image.Image {
	img := metadataImage()
	img.Brokers[1] = &image.Broker{ID: 1, Host: "h1", Port: 9092, Rack: "r1", Epoch: 1, Listeners: []image.Endpoint{
		{Name: "INTERNAL", Host: "h1", Port: 9092}, {Name: "EXTERNAL", Host: "e1", Port: 19092}}}
	img.Brokers[3] = &image.Broker{ID: 3, Host: "h3", Port: 9092, Epoch: 1, Listeners: []image.Endpoint{
		{Name: "INTERNAL", Host: "h3", Port: 9092}}}
	img.Brokers[4] = &image.Broker{ID: 4, Host: "h4", Port: 9092, Epoch: 1}
	return img
}

func onListener(req *wire.Request, listener string) *wire.Request {
	req.Listener = listener
	return req
}

// brokerAddrs lists the brokers as id@host:port, sorted.
func brokerAddrs[B any](bs []B, f func(B) (int32, string, int32)) []string {
	var out []string
	for _, b := range bs {
		id, host, port := f(b)
		out = append(out, fmt.Sprintf("%d@%s:%d", id, host, port))
	}
	slices.Sort(out)
	return out
}

// TestMetadataAnswersOnTheListenerOfTheConnection: Kafka's rule, the
// listener a request came in on picks each broker's address, and brokers
// without that listener are left out (Metadata and DescribeCluster).
func TestMetadataAnswersOnTheListenerOfTheConnection(t *testing.T) {
	h := newImageHandlers(t, listenersImage(), Config{NodeID: 1})
	cases := []struct {
		listener string
		want     []string
	}{
		{"INTERNAL", []string{"1@h1:9092", "3@h3:9092"}},
		{"EXTERNAL", []string{"1@e1:19092"}},
		{"external", []string{"1@e1:19092"}}, // names compare case-insensitively
		{"PLAINTEXT", []string{"4@h4:9092"}}, // the one listener of an older registration
		{"OTHER", nil},
		{"", []string{"1@h1:9092", "3@h3:9092", "4@h4:9092"}}, // not through a named listener: the first
	}
	for _, c := range cases {
		for _, v := range []int16{0, 12} {
			req := kmsg.NewPtrMetadataRequest()
			resp, err := h.handleMetadata(context.Background(), onListener(request(req, v), c.listener))
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, resp, v)
			got := brokerAddrs(resp.(*kmsg.MetadataResponse).Brokers, func(b kmsg.MetadataResponseBroker) (int32, string, int32) {
				return b.NodeID, b.Host, b.Port
			})
			if !slices.Equal(got, c.want) {
				t.Errorf("Metadata v%d on listener %q: brokers %v, want %v", v, c.listener, got, c.want)
			}
			// The partitions still name their replicas, whatever the listener.
			if tp := topicNamed(resp.(*kmsg.MetadataResponse).Topics, "t"); tp == nil || tp.Partitions[0].Leader != 1 {
				t.Errorf("Metadata v%d on listener %q: topic t %+v", v, c.listener, tp)
			}
		}
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = 1
		resp, err := h.handleDescribeCluster(context.Background(), onListener(request(req, 1), c.listener))
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, resp, 1)
		got := brokerAddrs(resp.(*kmsg.DescribeClusterResponse).Brokers, func(b kmsg.DescribeClusterResponseBroker) (int32, string, int32) {
			return b.NodeID, b.Host, b.Port
		})
		if !slices.Equal(got, c.want) {
			t.Errorf("DescribeCluster on listener %q: brokers %v, want %v", c.listener, got, c.want)
		}
	}
}

// withListeners applies to h's partition manager its current image with
// broker id's listeners set.
func withListeners(h *Handlers, id int32, ls ...image.Endpoint) {
	img := h.Partitions.Image().Clone()
	img.Index++
	img.Brokers[id].Listeners = ls
	h.Partitions.ApplyImage(img)
}

func TestFindCoordinatorOnTheListenerOfTheConnection(t *testing.T) {
	h := newGroupHandlers(t)
	find := func(listener string) *kmsg.FindCoordinatorResponse {
		t.Helper()
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = "g"
		resp, err := h.handleFindCoordinator(context.Background(), onListener(request(fc, 3), listener))
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.FindCoordinatorResponse)
	}
	// An older registration: its one address is PLAINTEXT's.
	if r := find("PLAINTEXT"); r.ErrorCode != 0 || r.Host != "10.0.0.1" || r.Port != 9092 {
		t.Fatalf("PLAINTEXT: %+v", r)
	}
	withListeners(h, node, image.Endpoint{Name: "INTERNAL", Host: "10.0.0.1", Port: 9092}, image.Endpoint{Name: "EXTERNAL", Host: "127.0.0.1", Port: 19092})
	if r := find("EXTERNAL"); r.ErrorCode != 0 || r.NodeID != node || r.Host != "127.0.0.1" || r.Port != 19092 {
		t.Fatalf("EXTERNAL: %+v", r)
	}
	if r := find("INTERNAL"); r.ErrorCode != 0 || r.Host != "10.0.0.1" || r.Port != 9092 {
		t.Fatalf("INTERNAL: %+v", r)
	}
	// The coordinator has no listener of that name: clients there cannot
	// reach it.
	if r := find("PLAINTEXT"); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("PLAINTEXT after named listeners: %+v", r)
	}
}

func TestProduceLeaderHintOnTheListenerOfTheConnection(t *testing.T) {
	h := newDataHandlers(t)
	withListeners(h, 2, image.Endpoint{Name: "INTERNAL", Host: "10.0.0.2", Port: 9092}, image.Endpoint{Name: "EXTERNAL", Host: "127.0.0.1", Port: 19093})
	hint := func(listener string) []kmsg.ProduceResponseBroker {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = 1, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "f" // led by broker 2
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = batch(1, 10)
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := h.handleProduce(context.Background(), onListener(request(req, 10), listener))
		if err != nil {
			t.Fatal(err)
		}
		pr := wire.Resolve(resp).(*kmsg.ProduceResponse)
		if op := pr.Topics[0].Partitions[0]; op.ErrorCode != kerr.NotLeaderForPartition.Code || op.CurrentLeader.LeaderID != 2 {
			t.Fatalf("listener %q: %+v", listener, op)
		}
		return pr.Brokers
	}
	if bs := hint("EXTERNAL"); len(bs) != 1 || bs[0].NodeID != 2 || bs[0].Host != "127.0.0.1" || bs[0].Port != 19093 {
		t.Fatalf("EXTERNAL: %+v", bs)
	}
	if bs := hint("INTERNAL"); len(bs) != 1 || bs[0].Host != "10.0.0.2" || bs[0].Port != 9092 {
		t.Fatalf("INTERNAL: %+v", bs)
	}
	// No endpoint on that listener: the leader id alone, no address.
	if bs := hint("OTHER"); len(bs) != 0 {
		t.Fatalf("OTHER: %+v", bs)
	}
}
