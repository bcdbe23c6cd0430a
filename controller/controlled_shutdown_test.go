package controller

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// TestControlledShutdownIsOneEntry: a controlled shutdown of a broker
// leading 1,000 partitions is decided in one Raft entry (the fence and
// every leadership moved to the other in-sync replica), and the broker is
// told to shut down right after it.
func TestControlledShutdownIsOneEntry(t *testing.T) {
	const n, other = 1000, int32(102)
	ctl := startController(t, testConfig(t, t.TempDir()))
	cl := startClient(t, ctl, broker)
	startClient(t, ctl, other)
	waitImage(t, ctl, "both brokers unfenced", func(img *image.Image) bool {
		b := img.Brokers[other]
		return unfenced(img) && b != nil && !b.Fenced
	})
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "t", -1, -1
	for p := int32(0); p < n; p++ {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, []int32{broker, other}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	resp := forward[*kmsg.CreateTopicsResponse](t, cl, req)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %+v", resp.Topics)
	}
	before := waitImage(t, ctl, "topic led by the broker", func(img *image.Image) bool {
		tp := img.Topics["t"]
		if tp == nil || len(tp.Partitions) != n {
			return false
		}
		for _, p := range tp.Partitions {
			if p.Leader != broker || len(p.ISR) != 2 {
				return false
			}
		}
		return true
	})
	lastIndex := ctl.raft.LastIndex()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	after := ctl.fsm.current()
	if got := ctl.raft.LastIndex() - lastIndex; got != 1 {
		t.Fatalf("controlled shutdown took %d raft entries, want 1", got)
	}
	if after.Index != before.Index+1 {
		t.Fatalf("image index %d -> %d, want one entry", before.Index, after.Index)
	}
	if !after.Brokers[broker].Fenced || leadsAny(after, broker) {
		t.Fatalf("after controlled shutdown: broker %+v", after.Brokers[broker])
	}
	for _, p := range after.Topics["t"].Partitions {
		if p.Leader != other || len(p.ISR) != 1 || p.ISR[0] != other {
			t.Fatalf("partition %d after controlled shutdown: leader %d ISR %v", p.Partition, p.Leader, p.ISR)
		}
	}
	t.Logf("controlled shutdown of a broker leading %d partitions: one raft entry, %v", n, took)
}
