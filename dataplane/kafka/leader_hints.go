package kafka

import (
	"github.com/hashicorp/go-hclog"

	"github.com/skein-io/skein/controller/image"
)

// leaderHint is the partition's leader and epoch in the broker's image,
// for the KIP-951 hints in NOT_LEADER_OR_FOLLOWER answers.
func (h *Handlers) leaderHint(topic string, partition int32) (leader, epoch int32, ok bool) {
	ip := h.Partitions.Image().Partition(topic, partition)
	if ip == nil || ip.Leader < 0 {
		return -1, -1, false
	}
	return ip.Leader, ip.LeaderEpoch, true
}

type leaderBroker struct{ *image.Broker }

func (b leaderBroker) rack() *string {
	if b.Rack == "" {
		return nil
	}
	r := b.Rack
	return &r
}

// leaderEndpoint is a live broker's advertised listener from the image.
func (h *Handlers) leaderEndpoint(id int32) (leaderBroker, bool) {
	b := h.Partitions.Image().Brokers[id]
	if b == nil || b.Fenced {
		return leaderBroker{}, false
	}
	return leaderBroker{b}, true
}

func (h *Handlers) dataLog() hclog.Logger {
	if h.Logger == nil {
		return hclog.NewNullLogger()
	}
	return h.Logger
}
