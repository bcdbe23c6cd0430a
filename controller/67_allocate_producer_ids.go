package controller

// AllocateProducerIDs (key 67), v0.
//
// Hands the broker the next block of ProducerIDBlockSize ids, starting at the
// image's NextProducerID, through a ProducerIDBlock record; blocks never
// overlap. Unknown broker -> BROKER_ID_NOT_REGISTERED; an epoch other than its
// current registration's -> STALE_BROKER_EPOCH.

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

// ProducerIDBlockSize is how many producer ids one AllocateProducerIDs gives.
const ProducerIDBlockSize = 1000

func (c *Controller) handleAllocateProducerIDs(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.AllocateProducerIDsRequest)
	resp := r.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	resp.ProducerIDStart = -1

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
	case img.NextProducerID > math.MaxInt64-ProducerIDBlockSize:
		resp.ErrorCode = kerr.UnknownServerError.Code
		c.log.Error("producer ids exhausted", "next_producer_id", img.NextProducerID)
		return resp
	}
	block := &producerIDBlockRecord{Broker: b.ID, First: img.NextProducerID, Size: ProducerIDBlockSize}
	if _, err := c.propose(ls, []record{{Type: typeProducerIDBlock, ProducerIDBlock: block}}); err != nil {
		resp.ErrorCode, _ = kafkaError(err)
		return resp
	}
	resp.ProducerIDStart, resp.ProducerIDLen = block.First, block.Size
	c.log.Debug("producer id block allocated", "broker", b.ID, "first", block.First, "size", block.Size)
	return resp
}
