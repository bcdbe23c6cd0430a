package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// TestManyPartitionDecisionsAreOneEntry: decisions that touch many
// partitions are ONE Raft entry each (design.md "Metadata to brokers as a
// log"): creating several topics of many partitions, a controlled shutdown
// moving every leadership of the broker, and a session-timeout fence with
// the elections it causes. The image index (the Raft index of the last
// entry applied) moves by one for each.
func TestManyPartitionDecisionsAreOneEntry(t *testing.T) {
	const topics, partitions = 3, 100
	cfg := testConfig(t, t.TempDir())
	cfg.SessionTimeout = 1500 * time.Millisecond
	ctl := startController(t, cfg)
	cl := startClient(t, ctl, broker)
	waitClient(t, cl, "broker unfenced", unfenced)

	leaders := func(img *image.Image, want int32) int {
		n := 0
		for _, tp := range img.Topics {
			for _, p := range tp.Partitions {
				if p.Leader == want {
					n++
				}
			}
		}
		return n
	}
	oneEntry := func(what string, before uint64, img *image.Image) {
		t.Helper()
		if img.Index != before+1 {
			t.Fatalf("%s: image index %d -> %d, want one entry", what, before, img.Index)
		}
	}

	// Topic creation: every topic of the request, every partition.
	before := ctl.fsm.current().Index
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	for i := range topics {
		req.Topics = append(req.Topics, createTopic(fmt.Sprintf("t%d", i), partitions, 1).Topics[0])
	}
	for _, rt := range forward[*kmsg.CreateTopicsResponse](t, cl, req).Topics {
		if rt.ErrorCode != 0 {
			t.Fatalf("create %s: error %d", rt.Topic, rt.ErrorCode)
		}
	}
	img := ctl.fsm.current()
	oneEntry("create topics", before, img)
	if n := leaders(img, broker); n != topics*partitions {
		t.Fatalf("%d partitions led by the broker, want %d", n, topics*partitions)
	}

	// Controlled shutdown: the fence and every leadership moved.
	before = img.Index
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	img = ctl.fsm.current()
	oneEntry("controlled shutdown", before, img)
	if !img.Brokers[broker].Fenced || leaders(img, -1) != topics*partitions {
		t.Fatalf("after controlled shutdown: fenced %v, %d offline partitions", img.Brokers[broker].Fenced, leaders(img, -1))
	}

	// Back (a clean shutdown: elected again from the ELR), then silent:
	// the session-timeout fence and its elections.
	_ = cl.Close()
	cl = startClient(t, ctl, broker)
	img = waitImage(t, ctl, "partitions led again", func(img *image.Image) bool {
		return leaders(img, broker) == topics*partitions
	})
	before = img.Index
	_ = cl.Close()
	img = waitImage(t, ctl, "broker fenced", func(img *image.Image) bool { return img.Brokers[broker].Fenced })
	oneEntry("session fence", before, img)
	if n := leaders(img, -1); n != topics*partitions {
		t.Fatalf("after the fence: %d offline partitions, want %d", n, topics*partitions)
	}
}
