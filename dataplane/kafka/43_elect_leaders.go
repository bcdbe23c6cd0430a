package kafka

// ElectLeaders (API key 43), versions 0-2.
//
//   - Forwarded to the active controller, which elects (PREFERRED: the first
//     replica when live and in the ISR; UNCLEAN: a leader for a partition
//     without one) and answers per partition with Kafka's codes
//     (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
//     ELIGIBLE_LEADERS_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION) once the
//     elections are in the metadata log. Null topics: every partition; the
//     answer then omits partitions that needed no election.
//   - Then, unless TimeoutMillis <= 0, the broker waits (bounded by
//     TimeoutMillis) until its own image shows each elected partition with
//     its new leader, so the client's next Metadata request here sees it.
//   - Controller unreachable within the timeout: REQUEST_TIMED_OUT (or
//     NOT_CONTROLLER) per requested partition, and at the top (v1+).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleElectLeaders(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.ElectLeadersRequest)
	version := r.Version
	fctx, cancel, wait := adminContext(ctx, r.TimeoutMillis)
	defer cancel()

	resp, err := h.forward(fctx, r)
	var er *kmsg.ElectLeadersResponse
	if err == nil {
		var ok bool
		if er, ok = resp.(*kmsg.ElectLeadersResponse); !ok {
			err = errUnexpectedResponse
		}
	}
	if err != nil {
		h.dataLog().Warn("elect leaders: forwarding to the controller failed", "error", err)
		return electLeadersError(version, r, forwardErrorCode(err), err.Error()), nil
	}
	er.SetVersion(version)
	if !wait {
		return er, nil
	}
	preferred := version == 0 || r.ElectionType == 0
	elected := map[string][]int32{}
	for _, t := range er.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				elected[t.Topic] = append(elected[t.Topic], p.Partition)
			}
		}
	}
	if len(elected) == 0 {
		return er, nil
	}
	if _, ok := h.waitImage(fctx, func(img *image.Image) bool {
		for topic, parts := range elected {
			for _, part := range parts {
				if !electionVisible(img, topic, part, preferred) {
					return false
				}
			}
		}
		return true
	}); !ok {
		h.dataLog().Warn("elect leaders: elected, but not yet in this broker's metadata", "topics", len(elected))
	}
	return er, nil
}

// electionVisible says img shows the outcome of an election of the
// partition: the preferred replica leading (preferred election) or any
// leader (unclean election). A partition deleted meanwhile counts as
// visible: there is nothing left to wait for.
func electionVisible(img *image.Image, topic string, partition int32, preferred bool) bool {
	p := img.Partition(topic, partition)
	switch {
	case p == nil:
		return img.Topics[topic] == nil
	case preferred:
		return len(p.Replicas) > 0 && p.Leader == p.Replicas[0]
	default:
		return p.Leader >= 0
	}
}

// electLeadersError answers every requested partition of r with code (and
// the top-level error, v1+).
func electLeadersError(version int16, r *kmsg.ElectLeadersRequest, code int16, msg string) *kmsg.ElectLeadersResponse {
	resp := kmsg.NewPtrElectLeadersResponse()
	resp.SetVersion(version)
	resp.ErrorCode = code
	for _, rt := range r.Topics {
		t := kmsg.NewElectLeadersResponseTopic()
		t.Topic = rt.Topic
		for _, part := range rt.Partitions {
			p := kmsg.NewElectLeadersResponseTopicPartition()
			p.Partition = part
			p.ErrorCode = code
			p.ErrorMessage = stringPtr(msg)
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}
