package kafka

// CreatePartitions (API key 37), versions 0-3.
//
//   - Forwarded to the active controller, which validates (count only grows,
//     assignments, live brokers) and answers with Kafka's codes
//     (INVALID_PARTITIONS, UNKNOWN_TOPIC_OR_PARTITION, ...) once the new
//     partitions are in the metadata log.
//   - Then, unless ValidateOnly or TimeoutMillis <= 0, the broker waits
//     (bounded by TimeoutMillis) until its own image has each topic with the
//     new count and a leader per partition (or no live replica to elect).
//   - Controller unreachable: REQUEST_TIMED_OUT / NOT_CONTROLLER per topic.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleCreatePartitions(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.CreatePartitionsRequest)
	version := r.Version
	fctx, cancel, wait := adminContext(ctx, r.TimeoutMillis)
	defer cancel()

	counts := make(map[string]int32, len(r.Topics))
	for _, t := range r.Topics {
		counts[t.Topic] = t.Count
	}
	resp, err := h.forward(fctx, r)
	var cr *kmsg.CreatePartitionsResponse
	if err == nil {
		var ok bool
		if cr, ok = resp.(*kmsg.CreatePartitionsResponse); !ok {
			err = errUnexpectedResponse
		}
	}
	if err != nil {
		h.dataLog().Warn("create partitions: forwarding to the controller failed", "error", err)
		out := kmsg.NewPtrCreatePartitionsResponse()
		out.SetVersion(version)
		for _, rt := range r.Topics {
			t := kmsg.NewCreatePartitionsResponseTopic()
			t.Topic = rt.Topic
			t.ErrorCode = forwardErrorCode(err)
			t.ErrorMessage = stringPtr(err.Error())
			out.Topics = append(out.Topics, t)
		}
		return out, nil
	}
	cr.SetVersion(version)
	if !wait || r.ValidateOnly {
		return cr, nil
	}
	grown := map[string]int32{}
	for _, t := range cr.Topics {
		if n, asked := counts[t.Topic]; asked && t.ErrorCode == 0 {
			grown[t.Topic] = n
		}
	}
	if len(grown) > 0 {
		if _, ok := h.waitImage(fctx, func(img *image.Image) bool {
			for name, n := range grown {
				if !topicSettled(img, img.Topics[name], int(n)) {
					return false
				}
			}
			return true
		}); !ok {
			h.dataLog().Warn("create partitions: created, but not yet in this broker's metadata", "topics", len(grown))
		}
	}
	return cr, nil
}
