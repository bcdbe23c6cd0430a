package kafka

// CreateTopics (API key 19), versions 2-7.
//
//   - Forwarded to the active controller, which validates (names, partition
//     counts, replication factor against live brokers, replica assignments,
//     configs) and answers with Kafka's codes once the topics are in the
//     metadata log.
//   - Then, unless ValidateOnly or TimeoutMillis <= 0, the broker waits
//     (bounded by TimeoutMillis) until its own image has every created topic
//     with a leader for each partition (or no live replica to elect), so the
//     client's next Metadata request here sees them.
//   - Controller unreachable within the timeout: REQUEST_TIMED_OUT per topic
//     (NOT_CONTROLLER if the client gave up otherwise); both are retriable.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleCreateTopics(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.CreateTopicsRequest)
	version := r.Version
	fctx, cancel, wait := adminContext(ctx, r.TimeoutMillis)
	defer cancel()

	resp, err := h.forward(fctx, r)
	var cr *kmsg.CreateTopicsResponse
	if err == nil {
		var ok bool
		if cr, ok = resp.(*kmsg.CreateTopicsResponse); !ok {
			err = errUnexpectedResponse
		}
	}
	if err != nil {
		h.dataLog().Warn("create topics: forwarding to the controller failed", "error", err)
		return createTopicsError(version, r, forwardErrorCode(err), err.Error()), nil
	}
	cr.SetVersion(version)
	if wait && !r.ValidateOnly {
		created := map[string]int32{} // name -> partitions expected
		for _, t := range cr.Topics {
			if t.ErrorCode == 0 {
				created[t.Topic] = max(t.NumPartitions, 1)
			}
		}
		if len(created) > 0 {
			if _, ok := h.waitImage(fctx, func(img *image.Image) bool {
				for name, n := range created {
					if !topicSettled(img, img.Topics[name], int(n)) {
						return false
					}
				}
				return true
			}); !ok {
				h.dataLog().Warn("create topics: created, but not yet in this broker's metadata", "topics", len(created))
			}
		}
	}
	return cr, nil
}

// createTopicsError answers every topic of r with code.
func createTopicsError(version int16, r *kmsg.CreateTopicsRequest, code int16, msg string) *kmsg.CreateTopicsResponse {
	resp := kmsg.NewPtrCreateTopicsResponse()
	resp.SetVersion(version)
	for _, rt := range r.Topics {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		t.ErrorCode = code
		t.ErrorMessage = stringPtr(msg)
		t.NumPartitions, t.ReplicationFactor = -1, -1
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}
