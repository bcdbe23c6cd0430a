package kafka

// Authorization of the transaction APIs (Kafka's rules):
//
//   - AddPartitionsToTxn v0-v3: WRITE on the transactional id (else
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED on every partition) and WRITE on
//     each topic (else TOPIC_AUTHORIZATION_FAILED on its partitions and
//     OPERATION_NOT_ATTEMPTED on the others); v4+ comes from brokers and
//     needs CLUSTER_ACTION.
//   - AddOffsetsToTxn: WRITE on the transactional id, READ on the group.
//   - EndTxn: WRITE on the transactional id.
//   - TxnOffsetCommit: WRITE on the transactional id, READ on the group,
//     READ on each topic.
//   - DescribeTransactions: DESCRIBE on each transactional id;
//     ListTransactions leaves out the ids the principal may not describe.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func init() {
	gates[24] = gateAddPartitionsToTxn
	gates[25] = gateAddOffsetsToTxn
	gates[26] = gateEndTxn
	gates[28] = gateTxnOffsetCommit
	gates[65] = gateDescribeTransactions
	gates[66] = gateListTransactions
}

var txnDenied = kerr.TransactionalIDAuthorizationFailed.Code

func (h *Handlers) txnWriteAllowed(req *wire.Request, id string) bool {
	return h.allowed(req, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTransactionalId, id)
}

func gateAddPartitionsToTxn(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.AddPartitionsToTxnRequest)
	if r.Version >= 4 {
		if !h.clusterAllowed(req, kmsg.ACLOperationClusterAction) {
			out := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
			out.ErrorCode = clusterDenied
			return out, nil
		}
		return next(ctx, req)
	}
	txnOK := h.txnWriteAllowed(req, r.TransactionalID)
	denied := map[string]bool{}
	for _, t := range r.Topics {
		if !txnOK || !h.topicAllowed(req, kmsg.ACLOperationWrite, t.Topic) {
			denied[t.Topic] = true
		}
	}
	if len(denied) == 0 {
		return next(ctx, req)
	}
	out := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	for _, t := range r.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		code := kerr.OperationNotAttempted.Code
		switch {
		case !txnOK:
			code = txnDenied
		case denied[t.Topic]:
			code = topicDenied
		}
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateAddOffsetsToTxn(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.AddOffsetsToTxnRequest)
	code := int16(0)
	switch {
	case !h.txnWriteAllowed(req, r.TransactionalID):
		code = txnDenied
	case !h.allowed(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group):
		code = groupDenied
	default:
		return next(ctx, req)
	}
	out := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	out.ErrorCode = code
	return out, nil
}

func gateEndTxn(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.EndTxnRequest)
	if h.txnWriteAllowed(req, r.TransactionalID) {
		return next(ctx, req)
	}
	out := r.ResponseKind().(*kmsg.EndTxnResponse)
	out.ErrorCode = txnDenied
	return out, nil
}

func gateTxnOffsetCommit(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.TxnOffsetCommitRequest)
	var denied []kmsg.TxnOffsetCommitRequestTopic
	code := topicDenied
	switch {
	case !h.txnWriteAllowed(req, r.TransactionalID):
		denied, r.Topics, code = r.Topics, nil, txnDenied
	case !h.allowed(req, kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, r.Group):
		denied, r.Topics, code = r.Topics, nil, groupDenied
	default:
		denied = split(&r.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) bool {
			return h.topicAllowed(req, kmsg.ACLOperationRead, t.Topic)
		})
	}
	var out *kmsg.TxnOffsetCommitResponse
	if len(r.Topics) == 0 && len(denied) > 0 {
		out = r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	} else {
		resp, err := next(ctx, req)
		if err != nil || len(denied) == 0 {
			return resp, err
		}
		out = resp.(*kmsg.TxnOffsetCommitResponse)
	}
	for _, t := range denied {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		out.Topics = append(out.Topics, rt)
	}
	return out, nil
}

func gateDescribeTransactions(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeTransactionsRequest)
	denied := split(&r.TransactionalIDs, func(id string) bool {
		return h.allowed(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, id)
	})
	var out *kmsg.DescribeTransactionsResponse
	if len(r.TransactionalIDs) == 0 && len(denied) > 0 {
		out = r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	} else {
		resp, err := next(ctx, req)
		if err != nil || len(denied) == 0 {
			return resp, err
		}
		out = resp.(*kmsg.DescribeTransactionsResponse)
	}
	for _, id := range denied {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ErrorCode = id, txnDenied
		st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
		out.TransactionStates = append(out.TransactionStates, st)
	}
	return out, nil
}

func gateListTransactions(h *Handlers, ctx context.Context, req *wire.Request, next wire.HandlerFunc) (kmsg.Response, error) {
	resp, err := next(ctx, req)
	if err != nil || resp == nil {
		return resp, err
	}
	out := resp.(*kmsg.ListTransactionsResponse)
	split(&out.TransactionStates, func(st kmsg.ListTransactionsResponseTransactionState) bool {
		return h.allowed(req, kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTransactionalId, st.TransactionalID)
	})
	return out, nil
}
