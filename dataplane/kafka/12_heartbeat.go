package kafka

// Heartbeat (API key 12), versions 0-4: served by the group coordinator.
// REBALANCE_IN_PROGRESS tells a member to rejoin; UNKNOWN_MEMBER_ID and
// ILLEGAL_GENERATION that it was removed or is behind.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleHeartbeat(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.HeartbeatRequest)
	if h.Groups == nil {
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.Version, resp.ErrorCode = r.Version, kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	return h.Groups.Heartbeat(r), nil
}
