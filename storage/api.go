package storage

// This file is the contract between storage and its users (dataplane). The
// bodies are stubs until the implementation lands; signatures are fixed.

import (
	"errors"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Sentinel errors. The dataplane maps each to one Kafka error code.
var (
	ErrOffsetOutOfRange     = errors.New("storage: offset out of range")     // OFFSET_OUT_OF_RANGE
	ErrCorruptBatch         = errors.New("storage: corrupt record batch")    // CORRUPT_MESSAGE
	ErrBatchTooLarge        = errors.New("storage: record batch too large")  // MESSAGE_TOO_LARGE
	ErrDuplicateSequence    = errors.New("storage: duplicate sequence")      // answered as success with the original offset
	ErrOutOfOrderSequence   = errors.New("storage: out of order sequence")   // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrInvalidProducerEpoch = errors.New("storage: invalid producer epoch")  // INVALID_PRODUCER_EPOCH
	ErrUnknownProducerID    = errors.New("storage: unknown producer id")     // UNKNOWN_PRODUCER_ID
	ErrClosed               = errors.New("storage: log closed")              // NOT_LEADER_OR_FOLLOWER (retriable)
	ErrDiskFull             = errors.New("storage: no space left on device") // KAFKA_STORAGE_ERROR
)

// TopicPartition names one partition log; its directory is "<Topic>-<Partition>".
type TopicPartition struct {
	Topic     string
	Partition int32
}

// LogConfig is the per-log configuration, taken from topic configs.
type LogConfig struct {
	SegmentBytes       int64         // segment.bytes
	SegmentMs          time.Duration // segment.ms
	IndexIntervalBytes int32         // index.interval.bytes
	MaxIndexBytes      int32         // segment.index.bytes
	RetentionMs        time.Duration // retention.ms; < 0 keeps forever
	RetentionBytes     int64         // retention.bytes; < 0 unlimited
	FlushMessages      int64         // flush.messages; fsync after this many records
	FlushMs            time.Duration // flush.ms
	FileDeleteDelay    time.Duration // file.delete.delay.ms
	MaxMessageBytes    int32         // max.message.bytes: largest batch accepted
}

// DefaultLogConfig returns Kafka's defaults.
func DefaultLogConfig() LogConfig { panic("stub") }

// Validate checks fields and their relations (segment.bytes >= max.message.bytes ...).
func (c LogConfig) Validate() error { panic("stub") }

// Config configures a Manager (one data directory).
type Config struct {
	Dir    string
	Log    LogConfig // defaults for logs opened without their own
	Logger hclog.Logger
	// Now is the clock (injected for tests); nil means time.Now.
	Now func() time.Time
	// RetentionCheckInterval is log.retention.check.interval.ms.
	RetentionCheckInterval time.Duration
	// FlushCheckpointInterval is how often the recovery point is checkpointed.
	FlushCheckpointInterval time.Duration
}

// DefaultConfig returns working values for dir.
func DefaultConfig(dir string) Config { panic("stub") }

// Validate checks the config.
func (c Config) Validate() error { panic("stub") }

// Manager owns one data directory: it opens (and after an unclean stop,
// recovers) every partition log in it, runs retention and checkpoints, and on
// Close writes the clean-shutdown marker.
type Manager struct{}

// OpenManager opens dir, creating it if needed. Without a clean-shutdown
// marker every log is recovered from its recovery point.
func OpenManager(cfg Config) (*Manager, error) { panic("stub") }

// Logs returns every open log.
func (m *Manager) Logs() map[TopicPartition]*Log { panic("stub") }

// Get returns an open log or nil.
func (m *Manager) Get(tp TopicPartition) *Log { panic("stub") }

// GetOrCreate returns the log, creating its directory (with partition.metadata
// holding topicID) if it does not exist.
func (m *Manager) GetOrCreate(tp TopicPartition, topicID [16]byte, cfg LogConfig) (*Log, error) {
	panic("stub")
}

// Delete closes the log and removes its directory (renamed first, removed later).
func (m *Manager) Delete(tp TopicPartition) error { panic("stub") }

// Start runs the background retention / flush / checkpoint loop until Close.
func (m *Manager) Start() { panic("stub") }

// Close flushes every log, writes checkpoints and the clean-shutdown marker,
// and closes files. Idempotent.
func (m *Manager) Close() error { panic("stub") }

// Log is one partition's append-only log. All methods are safe for concurrent
// use; appends are serialised inside.
type Log struct{}

// AppendInfo describes an append.
type AppendInfo struct {
	FirstOffset    int64
	LastOffset     int64
	MaxTimestamp   int64
	LogAppendTime  int64 // -1 unless message.timestamp.type=LogAppendTime
	LogStartOffset int64
	RecordCount    int32
}

// AppendAsLeader appends batches (one or more whole v2 batches, concatenated)
// assigning offsets from the log end: it overwrites each batch's base offset
// and partition leader epoch in place (the CRC does not cover them), checks
// idempotent producer sequences (ErrDuplicateSequence returns the AppendInfo
// of the original append), and writes the bytes verbatim.
func (l *Log) AppendAsLeader(batches []byte, leaderEpoch int32) (AppendInfo, error) { panic("stub") }

// AppendAsFollower appends batches whose offsets the leader assigned; the
// first must start at LogEndOffset.
func (l *Log) AppendAsFollower(batches []byte) (AppendInfo, error) { panic("stub") }

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
	// LogStartOffset and LogEndOffset as of the read.
	LogStartOffset int64
	LogEndOffset   int64
}

// ReadInto appends the bytes of the ranges to dst.
func (r ReadResult) ReadInto(dst []byte) ([]byte, error) { panic("stub") }

// Read returns whole batches starting with the one containing offset, at most
// maxBytes in total except that the first batch is always returned whole, and
// none whose last offset is >= maxOffset (the high watermark for consumers).
// An offset below the log start or above the log end is ErrOffsetOutOfRange;
// at the log end it is an empty result.
func (l *Log) Read(offset int64, maxBytes int32, maxOffset int64) (ReadResult, error) {
	panic("stub")
}

// LogStartOffset is the first offset still in the log.
func (l *Log) LogStartOffset() int64 { panic("stub") }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { panic("stub") }

// OffsetForTimestamp returns the first offset whose batch max timestamp is >=
// ts, and that batch's max timestamp; ok is false when there is none.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, timestamp int64, ok bool, err error) {
	panic("stub")
}

// MaxTimestamp returns the largest timestamp in the log and its offset (ListOffsets -3).
func (l *Log) MaxTimestamp() (timestamp int64, offset int64) { panic("stub") }

// Truncate removes every record at or above offset.
func (l *Log) Truncate(offset int64) error { panic("stub") }

// SetConfig changes the log's configuration (dynamic topic config change).
func (l *Log) SetConfig(cfg LogConfig) error { panic("stub") }

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error { panic("stub") }

// Dir is the log's directory.
func (l *Log) Dir() string { panic("stub") }

// TopicID is the id in partition.metadata.
func (l *Log) TopicID() [16]byte { panic("stub") }
