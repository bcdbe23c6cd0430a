package kafka

// ListPartitionReassignments (API key 46), version 0 (KIP-455).
//
//   - Forwarded to the active controller, which answers from its image
//     (the partitions being moved, with their replicas, adding and removing
//     replicas; null topics: every one).
//   - Then the broker waits (bounded by 5s) until its own metadata shows
//     no move the answer leaves out, so that a client told a move is over
//     finds its outcome in this broker's Metadata.
//   - Controller unreachable within the timeout: REQUEST_TIMED_OUT (or
//     NOT_CONTROLLER) at the top.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
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
	// Read your writes on this broker: its own metadata shows every move
	// the answer leaves out as over (bounded), so a client that learns a
	// move is over sees its outcome in this broker's Metadata.
	wctx, wcancel := context.WithTimeout(fctx, adminWaitMax)
	defer wcancel()
	if _, ok := h.waitImage(wctx, func(img *image.Image) bool { return movesAgree(img, r, lr) }); !ok {
		h.dataLog().Debug("list partition reassignments: this broker's metadata is behind the controller's answer")
	}
	return lr, nil
}

// movesAgree says img shows no partition r asks about (every partition
// when its topics are null) moving that lr does not list as moving. A
// partition lr lists may show anything (its move may have ended since).
func movesAgree(img *image.Image, r *kmsg.ListPartitionReassignmentsRequest, lr *kmsg.ListPartitionReassignmentsResponse) bool {
	listed := map[string]map[int32]bool{}
	for _, t := range lr.Topics {
		m := listed[t.Topic]
		if m == nil {
			m = map[int32]bool{}
			listed[t.Topic] = m
		}
		for _, p := range t.Partitions {
			m[p.Partition] = true
		}
	}
	moving := func(p *image.Partition) bool { return p != nil && (len(p.Adding) > 0 || len(p.Removing) > 0) }
	if r.Topics == nil {
		for name, t := range img.Topics {
			for _, p := range t.Partitions {
				if moving(p) && !listed[name][p.Partition] {
					return false
				}
			}
		}
		return true
	}
	for _, rt := range r.Topics {
		for _, part := range rt.Partitions {
			if moving(img.Partition(rt.Topic, part)) && !listed[rt.Topic][part] {
				return false
			}
		}
	}
	return true
}
