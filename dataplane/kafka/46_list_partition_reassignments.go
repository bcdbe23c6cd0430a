package kafka

// ListPartitionReassignments (API key 46), version 0 (KIP-455).
//
//   - Forwarded to the active controller, which answers from its image
//     (the partitions being moved, with their replicas, adding and removing
//     replicas; null topics: every one).
//   - Controller unreachable within the timeout: REQUEST_TIMED_OUT (or
//     NOT_CONTROLLER) at the top.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleListPartitionReassignments(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.ListPartitionReassignmentsRequest)
	version := r.Version
	fctx, cancel, _ := adminContext(ctx, r.TimeoutMillis)
	defer cancel()

	resp, err := h.forward(fctx, r)
	var lr *kmsg.ListPartitionReassignmentsResponse
	if err == nil {
		var ok bool
		if lr, ok = resp.(*kmsg.ListPartitionReassignmentsResponse); !ok {
			err = errUnexpectedResponse
		}
	}
	if err != nil {
		h.dataLog().Warn("list partition reassignments: forwarding to the controller failed", "error", err)
		out := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
		out.ErrorCode, out.ErrorMessage = forwardErrorCode(err), stringPtr(err.Error())
		return out, nil
	}
	lr.SetVersion(version)
	return lr, nil
}
