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

// metadataLoop replicates the controllers' metadata log: it long-polls for
// what follows the applied image's index and applies each answer whole —
// a snapshot replaces the image, deltas are applied to it in order
// (metalog) — then calls OnImage and publishes once per answer, so a broker
// catching up on many deltas hands the data plane one image, not one per
// delta. A delta that does not chain onto the image (another history, or a
// gap) makes it start over: the next poll asks from offset 0, which the
// controller answers with a snapshot; so does OFFSET_OUT_OF_RANGE.
//
// The active controller comes with every answer (the partition's
// CurrentLeader), not with the records: an answer that changes only it
// publishes a shallow copy of the image, same Index, with the new
// ActiveController.
func (c *Client) metadataLoop() {
	bo := newBackoff()
	failing := false
	reset := false
	for c.ctx.Err() == nil {
		cur := c.Image()
		base := cur
		if reset {
			base = image.New()
		}
		ups, active, hw, err := c.fetchUpdates(base.Index)
		if err != nil {
			if c.ctx.Err() != nil {
				return
			}
			if errors.Is(err, kerr.OffsetOutOfRange) {
				c.log.Warn("controller metadata is behind this broker's; starting over from the controller's image",
					"applied_index", cur.Index)
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
		next, err := c.follow(base, ups)
		if err != nil {
			c.log.Warn("metadata delta does not chain onto the applied image; starting over from a snapshot",
				"applied_index", cur.Index, "error", err)
			reset = true
			continue
		}
		if next == base { // no records
			if reset || active == nil || *active == cur.ActiveController {
				c.answered(hw)
				continue // nothing new
			}
			next = cur // only the active controller changed
		}
		reset = false
		pub := *next // shallow: the rest is shared, as ever
		if active != nil {
			pub.ActiveController = *active
		}
		c.apply(&pub)
		c.answered(hw)
	}
}

// metadataAnswer is the last metadata poll answered: the controller's high
// watermark then (its index + 1), and when.
type metadataAnswer struct {
	hw int64
	at time.Time
}

// answered records a metadata poll answered with hw, once what it carried
// is applied.
func (c *Client) answered(hw int64) {
	c.lastAnswer.Store(&metadataAnswer{hw: hw, at: time.Now()})
}

// MetadataCaughtUp says whether the applied image holds every record the
// controller had when it last answered a metadata poll, and when that
// answer came (zero before the first).
func (c *Client) MetadataCaughtUp() (caughtUp bool, answered time.Time) {
	a := c.lastAnswer.Load()
	if a == nil {
		return false, time.Time{}
	}
	return int64(c.Image().Index)+1 >= a.hw, a.at
}

// follow applies the updates of one answer to img and returns the result
// (img itself when there were none). A snapshot that is not newer than the
// image it would replace is skipped (the index never goes back, except by
// starting over from image.New()).
func (c *Client) follow(img *image.Image, ups []metalog.Update) (*image.Image, error) {
	for _, u := range ups {
		if u.Snapshot != nil {
			if u.Index <= img.Index && img.Index > 0 {
				continue
			}
			c.log.Info("loaded metadata snapshot", "index", u.Index, "topics", len(u.Snapshot.Topics),
				"brokers", len(u.Snapshot.Brokers))
		}
		next, err := u.ApplyTo(img)
		if err != nil {
			return nil, err
		}
		img = next
	}
	return img, nil
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

// fetchUpdates long-polls for the metadata log after offset after and
// returns the decoded updates (none when the poll ended without records),
// the active controller the answer names (nil when it names none: an
// answer below Fetch v12, without CurrentLeader) and the controller's high
// watermark (its applied index + 1).
func (c *Client) fetchUpdates(after uint64) ([]metalog.Update, *int32, int64, error) {
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
	p.PartitionMaxBytes = req.MaxBytes
	t.Partitions = []kmsg.FetchRequestTopicPartition{p}
	req.Topics = []kmsg.FetchRequestTopic{t}

	// A voter answers within MaxWait. One that does not, with some slack,
	// may be cut off from this broker without a reset (a host off the
	// network, an address that changed): the poll is given up and the
	// next goes to the next controller (send moves on), instead of
	// waiting for franz-go to give the connection up (MaxWait plus 10 s).
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.MetadataMaxWait+metadataPollSlack)
	defer cancel()
	kresp, err := c.send(ctx, req)
	if err != nil {
		return nil, nil, 0, err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, nil, 0, fmt.Errorf("metadata fetch: %w", err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic != metalog.Topic || rp.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, nil, 0, fmt.Errorf("metadata fetch: %w", err)
			}
			var active *int32
			if resp.GetVersion() >= 12 {
				active = &rp.CurrentLeader.LeaderID
			}
			ups, err := metalog.DecodeUpdates(rp.RecordBatches)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("metadata fetch: %w", err)
			}
			return ups, active, rp.HighWatermark, nil
		}
	}
	return nil, nil, 0, errors.New("metadata fetch: the response lacks the metadata partition")
}
