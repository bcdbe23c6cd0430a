package kafka

// OffsetDelete (API key 47), version 0: served by the group coordinator.
// Deletes committed offsets of a group: GROUP_ID_NOT_FOUND for an unknown
// group, GROUP_SUBSCRIBED_TO_TOPIC for partitions of topics the group's
// members consume, NON_EMPTY_GROUP for an active group that does not use
// the consumer protocol.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleOffsetDelete(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.OffsetDeleteRequest)
	if h.Groups == nil {
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.Version, resp.ErrorCode = r.Version, kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	if r.Group == "" {
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.Version, resp.ErrorCode = r.Version, kerr.InvalidGroupID.Code
		return resp, nil
	}
	return h.Groups.DeleteOffsets(ctx, r), nil
}
