package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

// heartbeatLoop heartbeats every HeartbeatInterval, and at once when kicked
// (an image reached the registration, a shutdown was asked, the epoch went
// stale). It re-registers when the controller no longer knows this
// registration.
func (c *Client) heartbeatLoop() {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		c.heartbeat()
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.heartbeatKick:
		}
	}
}

func (c *Client) heartbeat() {
	ctx, cancel := context.WithTimeout(c.ctx, max(c.cfg.HeartbeatInterval, time.Second))
	defer cancel()
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID = c.cfg.NodeID
	req.BrokerEpoch = c.BrokerEpoch()
	req.CurrentMetadataOffset = int64(c.Image().Index)
	req.WantShutdown = c.wantShutdown.Load()
	kresp, err := c.send(ctx, req)
	if err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("heartbeat failed", "broker", c.cfg.NodeID, "error", err)
		}
		return
	}
	resp := kresp.(*kmsg.BrokerHeartbeatResponse)
	switch resp.ErrorCode {
	case 0:
		if was := c.fenced.Swap(resp.IsFenced); was != resp.IsFenced {
			if resp.IsFenced {
				c.log.Warn("the controller fenced this broker", "broker", c.cfg.NodeID, "epoch", req.BrokerEpoch)
			} else {
				c.log.Info("the controller unfenced this broker", "broker", c.cfg.NodeID, "epoch", req.BrokerEpoch)
			}
		}
		if resp.ShouldShutdown {
			c.shutdownOnce.Do(func() {
				c.log.Info("controlled shutdown granted", "broker", c.cfg.NodeID)
				close(c.shutdownDone)
			})
		}
	case kerr.StaleBrokerEpoch.Code, kerr.BrokerIDNotRegistered.Code:
		if req.WantShutdown {
			// Nothing left to hand over: the registration is gone.
			c.shutdownOnce.Do(func() { close(c.shutdownDone) })
			return
		}
		c.log.Warn("registration no longer current; registering again", "broker", c.cfg.NodeID,
			"epoch", req.BrokerEpoch, "error", kerr.ErrorForCode(resp.ErrorCode))
		if err := c.register(c.ctx); err != nil {
			return // closing
		}
		c.kickHeartbeat()
	default:
		c.log.Warn("heartbeat refused", "broker", c.cfg.NodeID, "error", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// metadataLoop long-polls the controllers for images newer than the applied
// one and applies them in order: OnImage first, then publish.
func (c *Client) metadataLoop() {
	bo := newBackoff()
	failing := false
	reset := false
	for c.ctx.Err() == nil {
		img, err := c.fetchImage(c.Image().Index, reset)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			if errors.Is(err, kerr.OffsetOutOfRange) {
				c.log.Warn("controller metadata is behind this broker's; starting over from the controller's image",
					"applied_index", c.Image().Index)
				reset = true
				continue
			}
			if !failing {
				c.log.Warn("metadata fetch failed; retrying", "error", err)
				failing = true
			}
			_ = sleep(c.ctx, bo.NextBackOff())
			continue
		}
		if failing {
			c.log.Info("metadata fetch recovered")
			failing = false
		}
		bo.Reset()
		if img == nil || (!reset && img.Index <= c.Image().Index) {
			continue
		}
		reset = false
		c.apply(img)
	}
}

// apply hands img to OnImage, then publishes it.
func (c *Client) apply(img *image.Image) {
	if c.cfg.OnImage != nil {
		c.cfg.OnImage(img)
	}
	old := c.state.Swap(&published{img: img, changed: make(chan struct{})})
	close(old.changed)
	if old.img.ClusterID == "" && img.ClusterID != "" {
		c.log.Info("joined cluster", "cluster_id", img.ClusterID, "active_controller", img.ActiveController)
	}
	if epoch := c.BrokerEpoch(); epoch > 0 && int64(old.img.Index) < epoch && int64(img.Index) >= epoch {
		c.kickHeartbeat() // caught up with our registration: get unfenced now
	}
}

// fetchImage long-polls for an image with an index above after (any image
// when fromScratch). It returns nil when the poll ended without one.
func (c *Client) fetchImage(after uint64, fromScratch bool) (*image.Image, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(c.cfg.MetadataMaxWait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = 256 << 20
	req.SessionEpoch = -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = metalog.Topic
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = 0
	p.FetchOffset = int64(after)
	if fromScratch {
		p.FetchOffset = 0
	}
	p.PartitionMaxBytes = req.MaxBytes
	t.Partitions = []kmsg.FetchRequestTopicPartition{p}
	req.Topics = []kmsg.FetchRequestTopic{t}

	kresp, err := c.send(c.ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("metadata fetch: %w", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic != metalog.Topic || rp.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, fmt.Errorf("metadata fetch: %w", err)
			}
			if len(rp.RecordBatches) == 0 {
				return nil, nil
			}
			return metalog.DecodeImage(rp.RecordBatches)
		}
	}
	return nil, errors.New("metadata fetch: the response lacks the metadata partition")
}
