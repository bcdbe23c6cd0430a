package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

// errorTable is the one place where storage and partition sentinel errors
// become Kafka error codes. Order matters only if an error wraps two
// sentinels; the first match wins.
var errorTable = []struct {
	err  error
	code *kerr.Error
}{
	// partition
	{partition.ErrNotLeaderOrFollower, kerr.NotLeaderForPartition},
	{partition.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{partition.ErrUnknownTopicID, kerr.UnknownTopicID},
	{partition.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{partition.ErrUnknownLeaderEpoch, kerr.UnknownLeaderEpoch},
	{partition.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},
	{partition.ErrNotEnoughReplicasAfterAppend, kerr.NotEnoughReplicasAfterAppend},
	{partition.ErrRequestTimedOut, kerr.RequestTimedOut},
	{partition.ErrUnsupportedMessageFormat, kerr.UnsupportedForMessageFormat},
	{partition.ErrInvalidRecord, kerr.InvalidRecord},
	{partition.ErrInvalidTxnState, kerr.InvalidTxnState},
	{partition.ErrPolicyViolation, kerr.PolicyViolation},
	{partition.ErrClosed, kerr.NotLeaderForPartition},
	// storage
	{storage.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{storage.ErrCorruptBatch, kerr.CorruptMessage},
	{storage.ErrBatchTooLarge, kerr.MessageTooLarge},
	{storage.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
	{storage.ErrInvalidProducerEpoch, kerr.InvalidProducerEpoch},
	{storage.ErrUnknownProducerID, kerr.UnknownProducerID},
	{storage.ErrInvalidTxnState, kerr.InvalidTxnState},
	{storage.ErrCoordinatorFenced, kerr.TransactionCoordinatorFenced},
	{storage.ErrClosed, kerr.NotLeaderForPartition},
	{storage.ErrMarkerMissing, kerr.NotLeaderForPartition},
	{storage.ErrDiskFull, kerr.KafkaStorageError},
	// request lifetime
	{context.DeadlineExceeded, kerr.RequestTimedOut},
	{context.Canceled, kerr.RequestTimedOut},
}

// errorCode maps an error to its Kafka code: 0 for nil, UNKNOWN_SERVER_ERROR
// for anything not in the table (a bug or an unexpected I/O failure, which
// the caller logs). storage.ErrDuplicateSequence never gets here: it is a
// success.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.code.Code
		}
	}
	return kerr.UnknownServerError.Code
}

// isKnownError says whether err is in the table (unknown ones are logged).
func isKnownError(err error) bool {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return true
		}
	}
	return false
}
