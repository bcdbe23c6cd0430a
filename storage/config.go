package storage

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultLogConfig returns Kafka's defaults.
func DefaultLogConfig() LogConfig {
	return LogConfig{
		SegmentBytes:       1 << 30,
		SegmentAge:         7 * 24 * time.Hour,
		IndexIntervalBytes: 4096,
		MaxIndexBytes:      10 << 20,
		RetentionTime:      7 * 24 * time.Hour,
		RetentionBytes:     -1,
		FlushMessages:      math.MaxInt64,
		FlushInterval:      time.Duration(math.MaxInt64),
		FileDeleteDelay:    time.Minute,
		MaxMessageBytes:    1048588,

		Delete:                 true,
		DeleteRetention:        24 * time.Hour,
		MinCleanableDirtyRatio: 0.5,
		MaxCompactionLag:       time.Duration(math.MaxInt64),
	}
}

// Validate checks fields and their relations.
func (c LogConfig) Validate() error {
	switch {
	case c.SegmentBytes < 14:
		return fmt.Errorf("segment.bytes %d: must be at least 14", c.SegmentBytes)
	case c.SegmentBytes > math.MaxInt32:
		return fmt.Errorf("segment.bytes %d: must fit in 32 bits (index positions are 32-bit)", c.SegmentBytes)
	case c.SegmentAge <= 0:
		return fmt.Errorf("segment.ms %v: must be positive", c.SegmentAge)
	case c.IndexIntervalBytes < 0:
		return fmt.Errorf("index.interval.bytes %d: must not be negative", c.IndexIntervalBytes)
	case c.MaxIndexBytes < 12:
		return fmt.Errorf("segment.index.bytes %d: must be at least 12", c.MaxIndexBytes)
	case c.FlushMessages < 1:
		return fmt.Errorf("flush.messages %d: must be at least 1", c.FlushMessages)
	case c.FlushInterval < 0:
		return fmt.Errorf("flush.ms %v: must not be negative", c.FlushInterval)
	case c.FileDeleteDelay < 0:
		return fmt.Errorf("file.delete.delay.ms %v: must not be negative", c.FileDeleteDelay)
	case c.MaxMessageBytes < 0:
		return fmt.Errorf("max.message.bytes %d: must not be negative", c.MaxMessageBytes)
	case c.DeleteRetention < 0:
		return fmt.Errorf("delete.retention.ms %v: must not be negative", c.DeleteRetention)
	case c.MinCleanableDirtyRatio < 0 || c.MinCleanableDirtyRatio > 1:
		return fmt.Errorf("min.cleanable.dirty.ratio %v: must be in [0, 1]", c.MinCleanableDirtyRatio)
	case c.MinCompactionLag < 0:
		return fmt.Errorf("min.compaction.lag.ms %v: must not be negative", c.MinCompactionLag)
	case c.MaxCompactionLag <= 0:
		return fmt.Errorf("max.compaction.lag.ms %v: must be positive", c.MaxCompactionLag)
	}
	return nil
}

// DefaultWritebackBytes is Config.WritebackBytes' default.
const DefaultWritebackBytes = 1 << 20

// DefaultConfig returns working values for dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:                    dir,
		Log:                    DefaultLogConfig(),
		Logger:                 hclog.NewNullLogger(),
		Now:                    time.Now,
		RetentionCheckInterval: 5 * time.Minute,
		// Kafka's defaults: a day, checked every 10 minutes.
		ProducerIDExpiration:              24 * time.Hour,
		ProducerIDExpirationCheckInterval: 10 * time.Minute,
		FlushCheckpointInterval:           time.Minute,
		CleanerInterval:                   15 * time.Second,
		RecoveryThreads:                   DefaultRecoveryThreads(),
		WritebackBytes:                    DefaultWritebackBytes,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("storage: data directory is empty")
	}
	if c.RetentionCheckInterval <= 0 {
		return fmt.Errorf("log.retention.check.interval.ms %v: must be positive", c.RetentionCheckInterval)
	}
	if c.ProducerIDExpiration < 0 {
		return fmt.Errorf("producer.id.expiration.ms %v: must not be negative", c.ProducerIDExpiration)
	}
	if c.ProducerIDExpiration > 0 && c.ProducerIDExpirationCheckInterval <= 0 {
		return fmt.Errorf("producer.id.expiration.check.interval.ms %v: must be positive", c.ProducerIDExpirationCheckInterval)
	}
	if c.CleanerInterval < 0 {
		return fmt.Errorf("log.cleaner.backoff.ms %v: must not be negative", c.CleanerInterval)
	}
	if c.RecoveryThreads < 1 {
		return fmt.Errorf("num.recovery.threads.per.data.dir %d: must be at least 1", c.RecoveryThreads)
	}
	if c.WritebackBytes < 0 {
		return fmt.Errorf("log writeback bytes %d: must not be negative", c.WritebackBytes)
	}
	if c.FlushCheckpointInterval <= 0 {
		return fmt.Errorf("flush checkpoint interval %v: must be positive", c.FlushCheckpointInterval)
	}
	return c.Log.Validate()
}
