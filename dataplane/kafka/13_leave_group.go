package kafka

// LeaveGroup (API key 13), versions 0-5: served by the group coordinator.
// v3+ removes several members at once, by member id or group.instance.id
// (KIP-345), with a code per member.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleLeaveGroup(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.LeaveGroupRequest)
	if h.Groups == nil {
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.Version, resp.ErrorCode = r.Version, kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	return h.Groups.LeaveGroup(r), nil
}
