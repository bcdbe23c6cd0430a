package kafka

// ListTransactions (API key 66), versions 0-1: the transactions this
// broker coordinates, filtered by state names (unknown names are returned
// in UnknownStateFilters), producer ids and, v1+, a minimum running time
// (DurationFilterMillis, KIP-994). The authorization gate leaves out the
// transactional ids the principal may not describe.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/dataplane/txn"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleListTransactions(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.ListTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	if h.Txns == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	var f txn.ListFilter
	for _, name := range r.StateFilters {
		st, ok := txn.ParseState(name)
		if !ok {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
			continue
		}
		f.States = append(f.States, st)
	}
	if len(r.StateFilters) > 0 && len(f.States) == 0 {
		return resp, nil // only unknown states: nothing matches
	}
	f.ProducerIDs = r.ProducerIDFilters
	if r.Version >= 1 && r.DurationFilterMillis > 0 {
		f.MinDuration = time.Duration(r.DurationFilterMillis) * time.Millisecond
	}
	list, code := h.Txns.List(f)
	resp.ErrorCode = code
	for _, t := range list {
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = t.ID, t.ProducerID, t.State.String()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
