package controller

// Fetch (key 1), v4-v12 (topics by name), of the metadata topic only.
//
// Brokers follow the metadata by long-polling "__cluster_metadata" partition
// 0 with FetchOffset = the image index they have applied. Any voter answers
// from its own image: once its Index > FetchOffset (or after MaxWaitMillis),
// with ONE record batch holding ONE record whose value is the JSON of the
// whole image (image.Marshal) and whose offset is the image's Index
// (metalog.EncodeImage; controller/metalog is the one codec of these
// batches); HighWatermark = Index+1. Sending the whole image each time is simple and
// fine at this scale; record deltas are a later step.
//
// A FetchOffset beyond the active controller's (fully replayed) image is
// OFFSET_OUT_OF_RANGE: the broker follows another cluster's metadata or a
// wiped one, and should start over from 0. Other topics and partitions are
// UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"
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
	for _, t := range r.Topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = p.Partition
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			if t.Topic == metalog.Topic && p.Partition == 0 && metaTopic < 0 {
				metaTopic, metaPartition = len(resp.Topics), len(rt.Partitions)
				fetchOffset = p.FetchOffset
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
	if fetchOffset < 0 {
		metaPart.ErrorCode = kerr.OffsetOutOfRange.Code
		return resp, nil
	}
	wait := min(time.Duration(max(r.MaxWaitMillis, 0))*time.Millisecond, maxMetadataWait)
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	img, _ := c.fsm.waitAbove(waitCtx, uint64(fetchOffset))
	cancel()
	if ctx.Err() != nil {
		return nil, ctx.Err() // shutting down: close the connection
	}
	hw := int64(img.Index) + 1
	metaPart.HighWatermark, metaPart.LastStableOffset, metaPart.LogStartOffset = hw, hw, int64(img.Index)
	if img.Index <= uint64(fetchOffset) {
		if uint64(fetchOffset) > img.Index && c.active.Load() != nil {
			metaPart.ErrorCode = kerr.OffsetOutOfRange.Code
		}
		return resp, nil
	}
	batch, err := c.servedBatch(img)
	if err != nil {
		metaPart.ErrorCode, _ = kafkaError(err)
		return resp, nil
	}
	metaPart.RecordBatches = batch
	return resp, nil
}

// servedBatch returns img encoded as a metadata record batch, with
// ActiveController filled in.
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
