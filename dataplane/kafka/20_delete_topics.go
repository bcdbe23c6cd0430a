package kafka

// DeleteTopics (API key 20), versions 1-6.
//
//   - v1-5 name topics in TopicNames; v6 in Topics, by name or by TopicID.
//     The request is forwarded to the active controller in the v6 form; the
//     controller answers UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID,
//     INVALID_REQUEST for a name and id together, ...
//   - Then, unless TimeoutMillis <= 0, the broker waits (bounded by
//     TimeoutMillis) until the deleted topics are gone from its own image.
//     Partition logs are deleted when the partition manager applies that
//     image.
//   - Controller unreachable: REQUEST_TIMED_OUT / NOT_CONTROLLER per topic.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDeleteTopics(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DeleteTopicsRequest)
	version := r.Version
	fctx, cancel, wait := adminContext(ctx, r.TimeoutMillis)
	defer cancel()

	fwd := deleteTopicsForward(r)
	before := h.image()
	resp, err := h.forward(fctx, fwd)
	var dr *kmsg.DeleteTopicsResponse
	if err == nil {
		var ok bool
		if dr, ok = resp.(*kmsg.DeleteTopicsResponse); !ok {
			err = errUnexpectedResponse
		}
	}
	if err != nil {
		h.dataLog().Warn("delete topics: forwarding to the controller failed", "error", err)
		return deleteTopicsError(version, fwd, forwardErrorCode(err), err.Error()), nil
	}
	dr.SetVersion(version)
	if version < 6 {
		// v0-5 topic names are not nullable.
		for i := range dr.Topics {
			if dr.Topics[i].Topic == nil {
				dr.Topics[i].Topic = stringPtr("")
			}
		}
	}
	if !wait {
		return dr, nil
	}
	var gone [][16]byte
	for _, t := range dr.Topics {
		if t.ErrorCode != 0 {
			continue
		}
		id := t.TopicID
		if id == ([16]byte{}) && t.Topic != nil {
			if bt := before.Topics[*t.Topic]; bt != nil {
				id = bt.ID
			}
		}
		if id != ([16]byte{}) {
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		if _, ok := h.waitImage(fctx, func(img *image.Image) bool {
			for _, id := range gone {
				if img.TopicByID(id) != nil {
					return false
				}
			}
			return true
		}); !ok {
			h.dataLog().Warn("delete topics: deleted, but still in this broker's metadata", "topics", len(gone))
		}
	}
	return dr, nil
}

// deleteTopicsForward is r in the v6 form (Topics, by name or id), which
// means the same at any version the controller client negotiates.
func deleteTopicsForward(r *kmsg.DeleteTopicsRequest) *kmsg.DeleteTopicsRequest {
	fwd := kmsg.NewPtrDeleteTopicsRequest()
	fwd.SetVersion(max(r.Version, 6))
	fwd.TimeoutMillis = r.TimeoutMillis
	if r.Version >= 6 {
		fwd.Topics = append(fwd.Topics, r.Topics...)
		return fwd
	}
	for _, name := range r.TopicNames {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = stringPtr(name)
		fwd.Topics = append(fwd.Topics, t)
	}
	return fwd
}

// deleteTopicsError answers every topic of fwd with code.
func deleteTopicsError(version int16, fwd *kmsg.DeleteTopicsRequest, code int16, msg string) *kmsg.DeleteTopicsResponse {
	resp := kmsg.NewPtrDeleteTopicsResponse()
	resp.SetVersion(version)
	for _, rt := range fwd.Topics {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		if t.Topic == nil && version < 6 {
			t.Topic = stringPtr("")
		}
		t.ErrorCode = code
		t.ErrorMessage = stringPtr(msg)
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}
