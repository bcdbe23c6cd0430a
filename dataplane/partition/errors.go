package partition

import "errors"

// Sentinel errors. The Kafka handlers map each to one error code
// (dataplane/kafka/errors.go); storage's sentinels pass through wrapped.
var (
	// ErrNotLeaderOrFollower: this broker does not lead the partition (or
	// does not host it, or lost leadership while a request waited).
	ErrNotLeaderOrFollower = errors.New("partition: not the leader")
	// ErrUnknownTopicOrPartition: the image has no such topic or partition.
	ErrUnknownTopicOrPartition = errors.New("partition: unknown topic or partition")
	// ErrUnknownTopicID: the image has no topic with that id.
	ErrUnknownTopicID = errors.New("partition: unknown topic id")
	// ErrFencedLeaderEpoch: the request carries an older leader epoch.
	ErrFencedLeaderEpoch = errors.New("partition: fenced leader epoch")
	// ErrUnknownLeaderEpoch: the request carries a newer leader epoch.
	ErrUnknownLeaderEpoch = errors.New("partition: unknown leader epoch")
	// ErrNotEnoughReplicas: acks=all refused before appending because the
	// ISR is smaller than min.insync.replicas.
	ErrNotEnoughReplicas = errors.New("partition: not enough in-sync replicas")
	// ErrNotEnoughReplicasAfterAppend: appended, but the ISR shrank below
	// min.insync.replicas while the produce waited.
	ErrNotEnoughReplicasAfterAppend = errors.New("partition: not enough in-sync replicas after append")
	// ErrRequestTimedOut: an acks=all produce was not committed in time.
	ErrRequestTimedOut = errors.New("partition: request timed out")
	// ErrUnsupportedMessageFormat: a batch with magic other than 2.
	ErrUnsupportedMessageFormat = errors.New("partition: unsupported record batch magic")
	// ErrInvalidRecord: the produce data is not exactly one record batch,
	// or is a control batch.
	ErrInvalidRecord = errors.New("partition: invalid record batch")
	// ErrPolicyViolation: DeleteRecords on a topic whose cleanup.policy
	// is not delete alone.
	ErrPolicyViolation = errors.New("partition: records of a compacted topic cannot be deleted")
	// ErrClosed: the manager is closed (broker shutting down).
	ErrClosed = errors.New("partition: manager closed")
)
