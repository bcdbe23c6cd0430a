package kafka

// DescribeQuorum (API key 55), versions 0-2.
//
//   - Forwarded to the active controller, which describes the metadata
//     quorum (voters, leader, term, each voter's progress); the answer is
//     relayed at the client's version, as a Kafka broker forwards it.
//   - Controller unreachable: REQUEST_TIMED_OUT or NOT_CONTROLLER in the
//     top-level error code (both retriable).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDescribeQuorum(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeQuorumRequest)
	version := r.Version
	fctx, cancel := context.WithTimeout(ctx, adminWaitMax)
	defer cancel()
	resp, err := h.forward(fctx, r)
	if err == nil {
		if dq, ok := resp.(*kmsg.DescribeQuorumResponse); ok {
			dq.SetVersion(version)
			return dq, nil
		}
		err = errUnexpectedResponse
	}
	h.dataLog().Warn("describe quorum: forwarding to the controller failed", "error", err)
	out := r.ResponseKind().(*kmsg.DescribeQuorumResponse)
	out.ErrorCode = forwardErrorCode(err)
	out.ErrorMessage = stringPtr(err.Error())
	return out, nil
}
