package kafka

// EndTxn (API key 26), versions 0-4: commits or aborts the transaction.
// The answer comes once the PrepareCommit/PrepareAbort record is
// committed in __transaction_state; the markers and the complete record
// follow in the background (a new transaction of the same producer gets
// CONCURRENT_TRANSACTIONS until then). v5 (KIP-890 part 2, an epoch bump
// per transaction) is not served. PRODUCER_FENCED is
// INVALID_PRODUCER_EPOCH before v2.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleEndTxn(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.EndTxnRequest)
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	if h.Txns == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	code := h.Txns.EndTxn(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit)
	if code == kerr.ProducerFenced.Code && r.Version < 2 {
		code = kerr.InvalidProducerEpoch.Code
	}
	resp.ErrorCode = code
	return resp, nil
}
