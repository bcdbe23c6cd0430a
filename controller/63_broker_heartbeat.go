package controller

// BrokerHeartbeat (key 63), v0-v2.
//
// Checks, in order: unknown broker -> BROKER_ID_NOT_REGISTERED; epoch not the
// current registration's -> STALE_BROKER_EPOCH. Then the session is renewed
// and one decision may be written:
//   - WantShutdown (controlled shutdown): the broker is fenced, which takes
//     it out of every ISR and moves its leaderships to other live ISR (then
//     ELR) members; where that leaves the ISR below min.insync.replicas it
//     joins the ELR (when it was the last member, the partition is offline
//     with ISR [] until it or another eligible replica returns; KIP-966).
//     ShouldShutdown is true once it is fenced and leads nothing.
//   - WantFence: the broker is fenced the same way.
//   - fenced, and CurrentMetadataOffset >= its epoch (it has applied its own
//     registration): unfenced in the same entry as unfenceDecision's changes:
//     offline partitions get a leader where one is now live (the broker
//     itself when it is in their ISR or ELR; an out-of-sync live replica
//     only if the topic allows unclean election, or as the sole last known
//     leader: elections.go). The broker rejoins ISRs only
//     through its leaders' AlterPartition, once it has caught up.
// IsCaughtUp is CurrentMetadataOffset >= epoch; IsFenced is the state after
// the decision.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleBrokerHeartbeat(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.BrokerHeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	resp.IsFenced = true

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	b := img.Brokers[r.BrokerID]
	switch {
	case b == nil:
		resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
		return resp
	case b.Epoch != r.BrokerEpoch:
		resp.ErrorCode = kerr.StaleBrokerEpoch.Code
		return resp
	}
	ls.touch(b.ID, c.now())
	caughtUp := r.CurrentMetadataOffset >= b.Epoch
	if r.WantShutdown {
		ls.setShuttingDown(b.ID, true)
	}

	var recs []record
	var event string
	switch {
	case (r.WantShutdown || r.WantFence) && !b.Fenced:
		recs = c.fenceRecords(img, ls, b)
		event = "broker fenced: controlled shutdown"
		if !r.WantShutdown {
			event = "broker fenced: it asked to be"
		}
	case !r.WantShutdown && !r.WantFence && b.Fenced && caughtUp:
		recs = []record{{Type: typeUnfenceBroker, UnfenceBroker: &brokerEpochRecord{ID: b.ID, Epoch: b.Epoch}}}
		recs = append(recs, unfenceDecision(img, b.ID, liveWith(img, ls, b.ID))...)
		event = "broker unfenced"
	}
	if len(recs) > 0 {
		if _, err := c.propose(ls, recs); err != nil {
			resp.ErrorCode, _ = kafkaError(err)
			c.log.Warn("heartbeat decision failed", "broker", b.ID, "error", err)
			return resp
		}
		c.log.Info(event, "broker", b.ID, "epoch", b.Epoch, "metadata_offset", r.CurrentMetadataOffset,
			"partition_changes", len(recs)-1)
		c.logElections(img, recs)
		if event == "broker unfenced" {
			ls.wake()
		}
		img = c.fsm.current()
		b = img.Brokers[b.ID]
	}
	resp.IsCaughtUp = caughtUp
	resp.IsFenced = b.Fenced
	resp.ShouldShutdown = r.WantShutdown && b.Fenced && !leadsAny(img, b.ID)
	return resp
}

// liveWith is ls's liveness for img, with broker id counted live (it is
// being unfenced by the same entry).
func liveWith(img *image.Image, ls *leaderState, id int32) isLive {
	base := ls.live(img, -1)
	return func(r int32) bool { return r == id || base(r) }
}
