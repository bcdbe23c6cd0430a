package kafka

// SyncGroup (API key 14), versions 0-5: served by the group coordinator.
// The leader's assignment is written to __consumer_offsets (acknowledged by
// the ISR) before any member gets its share; v5 checks the protocol type
// and name against the group's (INCONSISTENT_GROUP_PROTOCOL).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleSyncGroup(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.SyncGroupRequest)
	if h.Groups == nil {
		resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.Version, resp.ErrorCode = r.Version, kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	return h.Groups.SyncGroup(ctx, r), nil
}
