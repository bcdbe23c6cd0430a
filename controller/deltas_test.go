package controller

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/client"
	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

// metaFetch is one metadata Fetch from offset, not waiting, answered with
// the decoded updates.
type metaFetch struct {
	part kmsg.FetchResponseTopicPartition
	ups  []metalog.Update
}

func fetchMeta(t *testing.T, addr string, offset int64, partMaxBytes int32) metaFetch {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = -1, 0, 256<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = metalog.Topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.FetchOffset, p.PartitionMaxBytes = offset, partMaxBytes
	rt.Partitions = []kmsg.FetchRequestTopicPartition{p}
	req.Topics = []kmsg.FetchRequestTopic{rt}
	resp := ask[*kmsg.FetchResponse](t, addr, req)
	if resp.GetVersion() < 12 {
		t.Fatalf("Fetch answered at v%d, want v12 (CurrentLeader)", resp.GetVersion())
	}
	part := resp.Topics[0].Partitions[0]
	ups, err := metalog.DecodeUpdates(part.RecordBatches)
	if err != nil {
		t.Fatalf("fetch from %d: %v", offset, err)
	}
	return metaFetch{part: part, ups: ups}
}

// kinds describes updates as "snapshot@12 delta@13<12 ...".
func kinds(ups []metalog.Update) string {
	var out []string
	for _, u := range ups {
		if u.Snapshot != nil {
			out = append(out, fmt.Sprintf("snapshot@%d", u.Index))
		} else {
			out = append(out, fmt.Sprintf("delta@%d<%d", u.Index, u.Delta.PrevIndex))
		}
	}
	return strings.Join(out, " ")
}

// imageJSON is the image as JSON without the (unreplicated) active
// controller.
func imageJSON(t *testing.T, img *image.Image) string {
	t.Helper()
	c := *img
	c.ActiveController = -1
	b, err := image.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMetadataFetchServesDeltas: a Fetch from 0 gets a snapshot; from an
// index on the FSM's window, the deltas after it, chained, which applied
// to the snapshot give the controller's image; bounded by
// PartitionMaxBytes to one; from an index off the chain or older than the
// window (after a restart from a Raft snapshot), a snapshot. Every answer
// names the active controller.
func TestMetadataFetchServesDeltas(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	ctl := startController(t, cfg)
	cl := startClient(t, ctl, broker)
	waitClient(t, cl, "broker unfenced", unfenced)
	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("first", 2, 1))
	waitImage(t, ctl, "first", func(img *image.Image) bool { return img.Topics["first"] != nil })

	snap := fetchMeta(t, ctl.Addr(), 0, 256<<20)
	if len(snap.ups) != 1 || snap.ups[0].Snapshot == nil {
		t.Fatalf("fetch from 0: %s, want one snapshot", kinds(snap.ups))
	}
	if snap.part.CurrentLeader.LeaderID != 1 || snap.part.CurrentLeader.LeaderEpoch < 1 {
		t.Fatalf("current leader %+v, want controller 1 in a term", snap.part.CurrentLeader)
	}
	x := snap.ups[0].Index

	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("second", 3, 1))
	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("third", 1, 1))
	cur := waitImage(t, ctl, "third", func(img *image.Image) bool { return img.Topics["third"] != nil })

	d := fetchMeta(t, ctl.Addr(), int64(x), 256<<20)
	if len(d.ups) < 2 || d.ups[0].Delta.PrevIndex != x || d.part.CurrentLeader.LeaderID != 1 ||
		d.ups[0].Delta.ClusterID == "" || d.ups[0].Delta.ClusterID != snap.ups[0].Snapshot.ClusterID {
		t.Fatalf("fetch from %d: %s, leader %d; want deltas from %d", x, kinds(d.ups), d.part.CurrentLeader.LeaderID, x)
	}
	for i, u := range d.ups {
		if u.Snapshot != nil || (i > 0 && u.Delta.PrevIndex != d.ups[i-1].Index) {
			t.Fatalf("fetch from %d: %s, want chained deltas", x, kinds(d.ups))
		}
	}
	got, err := metalog.ApplyUpdates(snap.ups[0].Snapshot, d.ups)
	if err != nil {
		t.Fatal(err)
	}
	if last := d.ups[len(d.ups)-1].Index; last != cur.Index && ctl.fsm.current().Index == cur.Index {
		t.Fatalf("deltas end at %d, image at %d", last, cur.Index)
	}
	if g, w := imageJSON(t, got), imageJSON(t, ctl.fsm.current()); got.Index == ctl.fsm.current().Index && g != w {
		t.Fatalf("snapshot + deltas differ from the controller's image:\n got %s\nwant %s", g, w)
	}

	if one := fetchMeta(t, ctl.Addr(), int64(x), 1); len(one.ups) != 1 || one.ups[0].Snapshot != nil || one.ups[0].Delta.PrevIndex != x {
		t.Fatalf("fetch from %d at most 1 byte: %s, want one delta", x, kinds(one.ups))
	}

	// An index between two deltas (a Raft entry that is not a command: a
	// configuration, no-op or barrier) is not on the chain.
	w := ctl.fsm.state.Load().window
	off, prev := uint64(0), w.start
	for _, d := range w.deltas {
		if off == 0 && d.index > prev+1 {
			off = prev + 1
		}
		prev = d.index
	}
	if off == 0 {
		t.Fatalf("no index off the chain in window %d..%d of %d deltas", w.start, cur.Index, len(w.deltas))
	}
	if f := fetchMeta(t, ctl.Addr(), int64(off), 256<<20); len(f.ups) != 1 || f.ups[0].Snapshot == nil {
		t.Fatalf("fetch from %d (off the chain): %s, want a snapshot", off, kinds(f.ups))
	}

	// Nothing new: no records, the high watermark and the leader.
	now := ctl.fsm.current().Index
	if f := fetchMeta(t, ctl.Addr(), int64(now), 256<<20); len(f.ups) != 0 || f.part.HighWatermark != int64(now)+1 || f.part.CurrentLeader.LeaderID != 1 {
		t.Fatalf("fetch from the latest index %d: %s, high watermark %d, leader %d", now, kinds(f.ups), f.part.HighWatermark, f.part.CurrentLeader.LeaderID)
	}

	// Restart from a Raft snapshot: the window starts at the snapshot.
	if err := ctl.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapIndex := ctl.fsm.current().Index
	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("fourth", 1, 1))
	waitImage(t, ctl, "fourth", func(img *image.Image) bool { return img.Topics["fourth"] != nil })
	_ = cl.Close()
	if err := ctl.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.InitialControllers = nil
	ctl = startController(t, cfg)
	waitImage(t, ctl, "fourth replayed", func(img *image.Image) bool { return img.Topics["fourth"] != nil })
	if w := ctl.fsm.state.Load().window; w.start != snapIndex {
		t.Fatalf("window after restart starts at %d, want the snapshot's index %d", w.start, snapIndex)
	}
	if f := fetchMeta(t, ctl.Addr(), int64(x), 256<<20); len(f.ups) != 1 || f.ups[0].Snapshot == nil {
		t.Fatalf("fetch from %d (older than the window): %s, want a snapshot", x, kinds(f.ups))
	}
	if f := fetchMeta(t, ctl.Addr(), int64(snapIndex), 256<<20); len(f.ups) == 0 || f.ups[0].Snapshot != nil || f.ups[0].Delta.PrevIndex != snapIndex {
		t.Fatalf("fetch from the window's start %d: %s, want deltas", snapIndex, kinds(f.ups))
	}
}

// countingWriter counts the lines holding needle.
type countingWriter struct {
	needle string
	n      atomic.Int32
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int32(bytes.Count(p, []byte(w.needle))))
	return len(p), nil
}

// TestBrokerClientAppliesDeltas: a broker client starting from nothing
// loads one snapshot, then follows by deltas: an image after a change to
// one topic keeps the other topics' pointers (a snapshot would not), and
// ends equal to the controller's.
func TestBrokerClientAppliesDeltas(t *testing.T) {
	ctl := startController(t, testConfig(t, t.TempDir()))
	snapshots := &countingWriter{needle: "loaded metadata snapshot"}
	var mu sync.Mutex
	var images []*image.Image
	cl := startClientConfig(t, client.Config{Controllers: []string{ctl.Addr()}, NodeID: broker,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "broker", Level: hclog.Info, Output: snapshots}),
		OnImage: func(img *image.Image) {
			mu.Lock()
			images = append(images, img)
			mu.Unlock()
		}})
	waitClient(t, cl, "broker unfenced", unfenced)
	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("stays", 2, 1))
	forward[*kmsg.CreateTopicsResponse](t, cl, createTopic("grows", 1, 1))
	before := waitClient(t, cl, "topics", func(img *image.Image) bool { return img.Topics["grows"] != nil })

	cp := kmsg.NewPtrCreatePartitionsRequest()
	ct := kmsg.NewCreatePartitionsRequestTopic()
	ct.Topic, ct.Count = "grows", 3
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{ct}
	if r := forward[*kmsg.CreatePartitionsResponse](t, cl, cp).Topics[0]; r.ErrorCode != 0 {
		t.Fatalf("create partitions: %+v", r)
	}
	after := waitClient(t, cl, "grown", func(img *image.Image) bool { return len(img.Topics["grows"].Partitions) == 3 })
	if after.Topics["stays"] != before.Topics["stays"] || after.Topics["grows"] == before.Topics["grows"] ||
		after.Topics["grows"].Partitions[0] != before.Topics["grows"].Partitions[0] {
		t.Fatalf("the image after one topic grew does not share the rest with the one before: not applied as a delta")
	}
	if n := snapshots.n.Load(); n != 1 {
		t.Fatalf("%d snapshots loaded, want 1", n)
	}
	if after.ActiveController != 1 {
		t.Fatalf("active controller %d, want 1", after.ActiveController)
	}
	want := ctl.fsm.current()
	got := waitClient(t, cl, "caught up", func(img *image.Image) bool { return img.Index >= want.Index })
	if got.Index == want.Index {
		if g, w := imageJSON(t, got), imageJSON(t, want); g != w {
			t.Fatalf("client image differs from the controller's:\n got %s\nwant %s", g, w)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(images); i++ {
		if images[i].Index < images[i-1].Index {
			t.Fatalf("OnImage went back from index %d to %d", images[i-1].Index, images[i].Index)
		}
	}
}
