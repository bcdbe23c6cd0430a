package kafka

// DescribeTransactions (API key 65), version 0: the state of each
// transactional id this broker coordinates (NOT_COORDINATOR for others,
// TRANSACTIONAL_ID_NOT_FOUND for unknown ids).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDescribeTransactions(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range r.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
		if h.Txns == nil {
			st.ErrorCode = kerr.CoordinatorNotAvailable.Code
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		t, code := h.Txns.Describe(id)
		st.ErrorCode = code
		if code == 0 {
			st.State = t.State.String()
			st.TimeoutMillis = int32(t.Timeout.Milliseconds())
			st.StartTimestamp = t.StartMs
			st.ProducerID, st.ProducerEpoch = t.ProducerID, t.ProducerEpoch
			for i, tp := range t.Partitions {
				if i == 0 || t.Partitions[i-1].Topic != tp.Topic {
					rt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					rt.Topic = tp.Topic
					st.Topics = append(st.Topics, rt)
				}
				last := &st.Topics[len(st.Topics)-1]
				last.Partitions = append(last.Partitions, tp.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
