package storage

// This file holds the types shared between storage and its users (dataplane).

import (
	"errors"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Sentinel errors. The dataplane maps each to one Kafka error code.
var (
	ErrOffsetOutOfRange     = errors.New("storage: offset out of range")    // OFFSET_OUT_OF_RANGE
	ErrCorruptBatch         = errors.New("storage: corrupt record batch")   // CORRUPT_MESSAGE
	ErrBatchTooLarge        = errors.New("storage: record batch too large") // MESSAGE_TOO_LARGE
	ErrDuplicateSequence    = errors.New("storage: duplicate sequence")     // answered as success with the original offset
	ErrOutOfOrderSequence   = errors.New("storage: out of order sequence")  // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch") // INVALID_PRODUCER_EPOCH
	ErrUnknownProducerID    = errors.New("storage: unknown producer id")    // UNKNOWN_PRODUCER_ID
	ErrClosed               = errors.New("storage: log closed")             // NOT_LEADER_OR_FOLLOWER (retriable)
	// ErrMarkerMissing: a producer's newer epoch writes a transactional
	// batch while this log still holds an older epoch's transaction open.
	// The coordinator writes that transaction's marker on the partition
	// leader before it hands out the new epoch, so the marker went to
	// another leader: this replica was deposed without knowing it yet.
	ErrMarkerMissing = errors.New("storage: transaction marker missing") // NOT_LEADER_OR_FOLLOWER (retriable)
	ErrDiskFull      = errors.New("storage: no space left on device")    // KAFKA_STORAGE_ERROR
)

// TopicPartition names one partition log; its directory is "<Topic>-<Partition>".
type TopicPartition struct {
	Topic     string
	Partition int32
}

// LogConfig is the per-log configuration, taken from topic configs.
type LogConfig struct {
	SegmentBytes       int64         // segment.bytes
	SegmentAge         time.Duration // segment.ms
	IndexIntervalBytes int32         // index.interval.bytes
	MaxIndexBytes      int32         // segment.index.bytes
	RetentionTime      time.Duration // retention.ms; < 0 keeps forever
	RetentionBytes     int64         // retention.bytes; < 0 unlimited
	FlushMessages      int64         // flush.messages; fsync after this many records
	FlushInterval      time.Duration // flush.ms
	FileDeleteDelay    time.Duration // file.delete.delay.ms
	MaxMessageBytes    int32         // max.message.bytes: largest batch accepted

	// cleanup.policy: Delete applies retention.ms/bytes; Compact keeps the
	// latest record per key (the cleaner). Both may be set.
	Delete                 bool
	Compact                bool
	DeleteRetention        time.Duration // delete.retention.ms: how long tombstones survive (in log time)
	MinCleanableDirtyRatio float64       // min.cleanable.dirty.ratio
	MinCompactionLag       time.Duration // min.compaction.lag.ms
	MaxCompactionLag       time.Duration // max.compaction.lag.ms
}

// Config configures a Manager (one data directory).
type Config struct {
	Dir    string
	Log    LogConfig // defaults for logs opened without their own
	Logger hclog.Logger
	// Now is the clock (injected for tests); nil means time.Now.
	Now func() time.Time
	// RetentionCheckInterval is log.retention.check.interval.ms.
	RetentionCheckInterval time.Duration
	// ProducerIDExpiration is producer.id.expiration.ms: the state of an
	// idempotent producer without an open transaction whose last batch
	// is older than this is dropped (0: never), checked every
	// ProducerIDExpirationCheckInterval
	// (producer.id.expiration.check.interval.ms). A producer that writes
	// again after that is new to the log (any sequence accepted), as in
	// Kafka.
	ProducerIDExpiration              time.Duration
	ProducerIDExpirationCheckInterval time.Duration
	// FlushCheckpointInterval is how often the recovery point is checkpointed.
	FlushCheckpointInterval time.Duration
	// CleanerInterval is how often the log cleaner looks for compacted logs
	// to clean (log.cleaner.backoff.ms); 0 disables the background cleaner
	// (CleanNow still works).
	CleanerInterval time.Duration
	// RecoveryThreads is num.recovery.threads.per.data.dir: how many logs
	// OpenManager opens (after an unclean stop: recovers) at once, and
	// Close flushes and closes at once. At least 1; DefaultConfig sets
	// DefaultRecoveryThreads().
	RecoveryThreads int
	// WritebackBytes: once this many bytes have been appended to a
	// segment since the last time, the kernel is asked to start writing
	// them to disk (sync_file_range, Linux; no wait and no fsync, so what
	// is durable does not change), so that disk writes are a steady
	// stream rather than the bursts of the kernel's own writeback
	// (Log.writeBack). 0: off. DefaultConfig sets DefaultWritebackBytes.
	WritebackBytes int64
}

// AppendInfo describes an append.
type AppendInfo struct {
	FirstOffset    int64
	LastOffset     int64
	MaxTimestamp   int64
	LogAppendTime  int64 // -1 unless message.timestamp.type=LogAppendTime
	LogStartOffset int64
	RecordCount    int32
}

// FileRange is a byte range of a segment file, for pread or sendfile.
type FileRange struct {
	File *os.File
	Pos  int64
	Size int64
}

// ReadResult is what a read returns: whole batches as file ranges.
type ReadResult struct {
	Ranges []FileRange
	Size   int64
	// NextOffset is one past the last offset of the last batch returned
	// (0 when none is); the batches hold records up to it.
	NextOffset int64
	// LogStartOffset and LogEndOffset as of the read.
	LogStartOffset int64
	LogEndOffset   int64
	// SegmentBase is the base offset of the segment the ranges are in
	// (one segment per read); meaningful when Size > 0.
	SegmentBase int64
}
