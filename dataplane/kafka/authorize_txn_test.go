package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/wire"
)

// TestTransactionGates: the transaction APIs need WRITE on the
// transactional id (and on the topics added, READ on the group), and the
// listings keep only what the principal may describe. Handlers without a
// coordinator answer what passes the gates with COORDINATOR_NOT_AVAILABLE.
func TestTransactionGates(t *testing.T) {
	h := newDataHandlers(t)
	h.Authorizer = authz.New(authz.Config{}, func() []image.ACL { return h.Partitions.Image().ACLs })
	r := wire.NewRegistry()
	h.Register(r)
	X, T, G, lit := kmsg.ACLResourceTypeTransactionalId, kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourcePatternTypeLiteral
	allow := kmsg.ACLPermissionTypeAllow
	setACLs(h,
		aclEntry("1", X, "tx", lit, "User:alice", kmsg.ACLOperationWrite, allow),
		aclEntry("2", T, "t", lit, "User:alice", kmsg.ACLOperationWrite, allow),
		aclEntry("3", G, "g", lit, "User:alice", kmsg.ACLOperationRead, allow),
		aclEntry("4", X, "tx", lit, "User:bob", kmsg.ACLOperationDescribe, allow),
	)
	add := func(who, id string, topics ...string) []int16 {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version = 3
		req.TransactionalID = id
		for _, topic := range topics {
			rt := kmsg.NewAddPartitionsToTxnRequestTopic()
			rt.Topic, rt.Partitions = topic, []int32{0}
			req.Topics = append(req.Topics, rt)
		}
		resp := serve(t, r, who, request(req, 3)).(*kmsg.AddPartitionsToTxnResponse)
		var codes []int16
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				codes = append(codes, p.ErrorCode)
			}
		}
		return codes
	}
	if c := add("User:bob", "tx", "t"); c[0] != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("bob adds to tx: %v", c)
	}
	if c := add("User:alice", "tx", "t", "u"); len(c) != 2 || c[0] != kerr.OperationNotAttempted.Code || c[1] != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice adds t and u: %v", c)
	}
	if c := add("User:alice", "tx", "t"); c[0] != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("alice adds t (passes the gate): %v", c)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID = "tx"
	if c := serve(t, r, "User:bob", request(end, 3)).(*kmsg.EndTxnResponse).ErrorCode; c != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("bob ends tx: %v", kerr.ErrorForCode(c))
	}
	offs := kmsg.NewPtrAddOffsetsToTxnRequest()
	offs.TransactionalID, offs.Group = "tx", "other"
	if c := serve(t, r, "User:alice", request(offs, 3)).(*kmsg.AddOffsetsToTxnResponse).ErrorCode; c != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("alice adds offsets of another group: %v", kerr.ErrorForCode(c))
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.Version = 3
	commit.TransactionalID, commit.Group = "tx", "g"
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic, rt.Partitions = "t", []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}
	commit.Topics = append(commit.Topics, rt)
	// alice has no READ on topic t.
	if resp := serve(t, r, "User:alice", request(commit, 3)).(*kmsg.TxnOffsetCommitResponse); resp.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice commits offsets of t: %+v", resp.Topics)
	}
	desc := kmsg.NewPtrDescribeTransactionsRequest()
	desc.TransactionalIDs = []string{"tx", "secret"}
	resp := serve(t, r, "User:bob", request(desc, 0)).(*kmsg.DescribeTransactionsResponse)
	codes := map[string]int16{}
	for _, st := range resp.TransactionStates {
		codes[st.TransactionalID] = st.ErrorCode
	}
	if codes["tx"] != kerr.CoordinatorNotAvailable.Code || codes["secret"] != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("bob describes tx and secret: %v", codes)
	}
}
