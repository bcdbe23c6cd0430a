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

// leaderEndpoint is a live broker's address on the named listener, from
// the image; false when it is fenced, unknown or has no such listener.
func (h *Handlers) leaderEndpoint(id int32, listener string) (b leaderBroker, host string, port int32, ok bool) {
	ib := h.Partitions.Image().Brokers[id]
	if ib == nil || ib.Fenced {
		return leaderBroker{}, "", 0, false
	}
	host, port, ok = ib.Endpoint(listener)
	return leaderBroker{ib}, host, port, ok
}

func (h *Handlers) dataLog() hclog.Logger {
	if h.Logger == nil {
		return hclog.NewNullLogger()
	}
	return h.Logger
}
