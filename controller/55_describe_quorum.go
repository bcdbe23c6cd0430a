package controller

// DescribeQuorum (key 55), v0-v2, served by the active controller (followers
// forward it, quorum.go).
//
// The one partition is __cluster_metadata-0. LeaderID is this node,
// LeaderEpoch the Raft term. Offsets are metadata offsets, the ones brokers
// fetch: a server's LogEndOffset is its applied image index + 1 and
// HighWatermark is the active controller's. CurrentVoters are the Raft
// voters, Observers the non-voters (a server being added). For other
// servers LogEndOffset, LastFetchTimestamp and LastCaughtUpTimestamp come
// from the active controller's polls (quorum.go): the index of the last
// answer, when it came, and when the server last answered with the active
// controller's index; -1 when it never answered this term. For the active
// controller the timestamps are now. v2 Nodes list each server's
// "CONTROLLER" (Kafka) listener when published and its "RAFT" address.
// Another topic or partition: UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"
	"net"
	"strconv"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleDescribeQuorum(_ context.Context, _ *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeQuorumRequest)
	resp := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	conf, _, err := c.raftConfiguration()
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = kafkaError(err)
		return resp
	}
	term, _ := strconv.ParseUint(c.raft.Stats()["term"], 10, 64)
	img := c.fsm.current()
	now := c.now()
	leaderEnd := int64(img.Index) + 1

	state := func(s raft.Server) (kmsg.DescribeQuorumResponseTopicPartitionReplicaState, bool) {
		rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		id, ok := serverNodeID(s.ID)
		if !ok {
			return rs, false
		}
		rs.ReplicaID = id
		rs.LogEndOffset = -1
		if id == c.cfg.NodeID {
			rs.LogEndOffset = leaderEnd
			rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = now.UnixMilli(), now.UnixMilli()
		} else if p, ok := c.quorum.get(id); ok {
			rs.LogEndOffset = int64(p.Index) + 1
			rs.LastFetchTimestamp = p.Contact.UnixMilli()
			if !p.CaughtUp.IsZero() {
				rs.LastCaughtUpTimestamp = p.CaughtUp.UnixMilli()
			}
		}
		return rs, true
	}

	for _, t := range r.Topics {
		rt := kmsg.NewDescribeQuorumResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeQuorumResponseTopicPartition()
			rp.Partition = p.Partition
			if t.Topic != metalog.Topic || p.Partition != 0 {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			rp.LeaderID = c.cfg.NodeID
			rp.LeaderEpoch = int32(min(term, 1<<31-1))
			rp.HighWatermark = leaderEnd
			for _, s := range conf.Servers {
				rs, ok := state(s)
				if !ok {
					continue
				}
				if s.Suffrage == raft.Voter {
					rp.CurrentVoters = append(rp.CurrentVoters, rs)
				} else {
					rp.Observers = append(rp.Observers, rs)
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for _, s := range conf.Servers {
		id, ok := serverNodeID(s.ID)
		if !ok {
			continue
		}
		n := kmsg.NewDescribeQuorumResponseNode()
		n.NodeID = id
		if l, ok := img.Controllers[id]; ok {
			nl := kmsg.NewDescribeQuorumResponseNodeListener()
			nl.Name, nl.Host, nl.Port = listenerNameController, l.Host, uint16(l.Port)
			n.Listeners = append(n.Listeners, nl)
		}
		if host, port, err := net.SplitHostPort(string(s.Address)); err == nil {
			if p, err := strconv.ParseUint(port, 10, 16); err == nil {
				nl := kmsg.NewDescribeQuorumResponseNodeListener()
				nl.Name, nl.Host, nl.Port = listenerNameRaft, host, uint16(p)
				n.Listeners = append(n.Listeners, nl)
			}
		}
		resp.Nodes = append(resp.Nodes, n)
	}
	return resp
}
