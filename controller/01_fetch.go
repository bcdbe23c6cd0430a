package controller

// Fetch (key 1), v4-v12 (topics by name), of the metadata topic only.
//
// Brokers replicate the metadata incrementally, as KRaft brokers fetch
// __cluster_metadata: they long-poll "__cluster_metadata" partition 0 with
// FetchOffset = the index of the image they have applied. Any voter answers
// from its own state, once its image's Index > FetchOffset (or after
// MaxWaitMillis, with no records), with record batches encoded by
// controller/metalog (the one codec of the metadata log; see its package
// comment for the format), one record each:
//
//   - deltas, when FetchOffset is on the FSM's window of recent entries
//     (fsm.go: the window's start, or the index of one of its entries): one
//     batch per entry after FetchOffset, at offset = the entry's index,
//     holding the index and cluster id of the image it applies onto and
//     the entry's changes (none when the FSM discarded it, so the broker
//     only advances its index). The answer stops before MaxBytes /
//     PartitionMaxBytes but holds at least one delta. The cost of a change
//     is that of the change, not of the cluster. A broker whose image is
//     not the one a delta applies onto (another cluster's, at the same
//     index) starts over from 0.
//   - otherwise (FetchOffset 0, older than the window, or not on its chain:
//     an index of another history), a snapshot: ONE batch holding the whole
//     image (image.Marshal) at offset = its Index.
//
// HighWatermark = the image's Index+1. Every answer on the metadata
// partition, records or not, carries CurrentLeader (v12+): LeaderID = the
// active controller as this voter knows it (-1 unknown), LeaderEpoch = the
// Raft term; brokers take image.ActiveController from it.
//
// A FetchOffset beyond the active controller's (fully replayed) image is
// OFFSET_OUT_OF_RANGE: the broker follows another cluster's metadata or a
// wiped one, and should start over from 0. Other topics and partitions are
// UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/wire"
)

const (
	fetchMinVersion = 4
	fetchMaxVersion = 12
	// maxMetadataWait caps a long poll whatever the client asks.
	maxMetadataWait = 30 * time.Second
)

// servedImage is an image encoded as a metadata record batch, cached until
// the image or the active controller changes.
type servedImage struct {
	index  uint64
	active int32
	batch  []byte
}

func (c *Controller) handleFetch(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.FetchRequest)
	resp := r.ResponseKind().(*kmsg.FetchResponse)
	metaTopic, metaPartition := -1, -1
	var fetchOffset int64
	var partMaxBytes int32
	for _, t := range r.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			if t.Topic == metalog.Topic && p.Partition == 0 && metaTopic < 0 {
				metaTopic, metaPartition = len(resp.Topics), len(rt.Partitions)
				fetchOffset, partMaxBytes = p.FetchOffset, p.PartitionMaxBytes
			} else {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if metaTopic < 0 {
		return resp, nil
	}
	metaPart := &resp.Topics[metaTopic].Partitions[metaPartition]
	c.setCurrentLeader(metaPart)
	if fetchOffset < 0 {
		metaPart.ErrorCode = kerr.OffsetOutOfRange.Code
		return resp, nil
	}
	wait := min(time.Duration(max(r.MaxWaitMillis, 0))*time.Millisecond, maxMetadataWait)
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	st, _ := c.fsm.waitAbove(waitCtx, uint64(fetchOffset))
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err() // shutting down: close the connection
	}
	img := st.img
	c.setCurrentLeader(metaPart) // again: it may have changed during the wait
	hw := int64(img.Index) + 1
	metaPart.HighWatermark, metaPart.LastStableOffset, metaPart.LogStartOffset = hw, hw, int64(img.Index)
	if img.Index <= uint64(fetchOffset) {
		if uint64(fetchOffset) > img.Index && c.active.Load() != nil {
			metaPart.ErrorCode = kerr.OffsetOutOfRange.Code
		}
		return resp, nil
	}
	if fetchOffset > 0 {
		limit := int(min(max(r.MaxBytes, 0), max(partMaxBytes, 0)))
		if deltas, ok := st.window.after(uint64(fetchOffset), limit); ok {
			metaPart.RecordBatches = deltas
			return resp, nil
		}
	}
	batch, err := c.servedBatch(img)
	if err != nil {
		metaPart.ErrorCode, _ = kafkaError(err)
		return resp, nil
	}
	metaPart.RecordBatches = batch
	return resp, nil
}

// setCurrentLeader tells the broker the active controller and the Raft
// term.
func (c *Controller) setCurrentLeader(p *kmsg.FetchResponseTopicPartition) {
	p.CurrentLeader.LeaderID = c.activeControllerID()
	p.CurrentLeader.LeaderEpoch = int32(min(c.raft.CurrentTerm(), math.MaxInt32))
}

// servedBatch returns img encoded as a snapshot batch, with
// ActiveController filled in (for brokers that read it there rather than
// from CurrentLeader).
func (c *Controller) servedBatch(img *image.Image) ([]byte, error) {
	active := c.activeControllerID()
	if s := c.served.Load(); s != nil && s.index == img.Index && s.active == active {
		return s.batch, nil
	}
	withActive := *img // shallow: the maps are only read
	withActive.ActiveController = active
	batch, err := metalog.EncodeImage(&withActive, time.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	c.served.Store(&servedImage{index: img.Index, active: active, batch: batch})
	return batch, nil
}
