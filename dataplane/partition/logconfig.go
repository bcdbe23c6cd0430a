package partition

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// TopicSettings are the topic configs the partition itself enforces (the
// rest go to storage as a storage.LogConfig).
type TopicSettings struct {
	// MinInsyncReplicas is min.insync.replicas.
	MinInsyncReplicas int
	// LogAppendTime is message.timestamp.type=LogAppendTime.
	LogAppendTime bool
	// MaxMessageBytes is max.message.bytes: the largest batch accepted.
	MaxMessageBytes int32
	// Compact is cleanup.policy with compact: every record needs a key.
	Compact bool
}

// TopicConfigs maps a topic's effective configs in img (its own values, else
// the cluster's dynamic broker defaults, else the built-in defaults) onto the
// storage log config and the partition settings. A value that does not parse
// (the controller validates them, so only a bug gets here) keeps the built-in
// default and is reported in the returned error; the configs are still usable.
func TopicConfigs(img *image.Image, t *image.Topic) (storage.LogConfig, TopicSettings, error) {
	var firstErr error
	num := func(key string) int64 {
		v, _ := img.TopicConfig(t, key)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("topic config %s=%q: %w", key, v, err)
			}
			n, _ = strconv.ParseInt(image.TopicConfigDefs[key].Default, 10, 64)
		}
		return n
	}
	clamp32 := func(n int64) int32 { return int32(max(min(n, math.MaxInt32), math.MinInt32)) }

	lc := storage.LogConfig{
		SegmentBytes:       num("segment.bytes"),
		SegmentAge:         millis(num("segment.ms")),
		IndexIntervalBytes: clamp32(num("index.interval.bytes")),
		MaxIndexBytes:      clamp32(num("segment.index.bytes")),
		RetentionTime:      millis(num("retention.ms")),
		RetentionBytes:     num("retention.bytes"),
		FlushMessages:      num("flush.messages"),
		FlushInterval:      millis(num("flush.ms")),
		FileDeleteDelay:    millis(num("file.delete.delay.ms")),
		MaxMessageBytes:    clamp32(num("max.message.bytes")),

		DeleteRetention:        millis(max(num("delete.retention.ms"), 0)),
		MinCleanableDirtyRatio: 0.5,
		MinCompactionLag:       millis(max(num("min.compaction.lag.ms"), 0)),
		MaxCompactionLag:       millis(max(num("max.compaction.lag.ms"), 1)),
	}
	policy, _ := img.TopicConfig(t, "cleanup.policy")
	for _, p := range strings.Split(policy, ",") {
		switch strings.TrimSpace(p) {
		case "delete":
			lc.Delete = true
		case "compact":
			lc.Compact = true
		}
	}
	if !lc.Delete && !lc.Compact {
		lc.Delete = true // an empty or unknown policy: Kafka's default
	}
	if v, _ := img.TopicConfig(t, "min.cleanable.dirty.ratio"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			if firstErr == nil {
				firstErr = fmt.Errorf("topic config min.cleanable.dirty.ratio=%q: not a ratio in [0, 1]", v)
			}
		} else {
			lc.MinCleanableDirtyRatio = r
		}
	}
	tsType, _ := img.TopicConfig(t, "message.timestamp.type")
	s := TopicSettings{
		MinInsyncReplicas: int(max(num("min.insync.replicas"), 1)),
		LogAppendTime:     tsType == "LogAppendTime",
		MaxMessageBytes:   lc.MaxMessageBytes,
		Compact:           lc.Compact,
	}
	return lc, s, firstErr
}

// millis converts a Kafka millisecond config to a Duration, saturating
// (flush.ms defaults to Long.MAX_VALUE, which overflows a Duration). Negative
// values stay negative ("forever" for retention.ms = -1).
func millis(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return time.Duration(math.MaxInt64)
	}
	if ms < math.MinInt64/int64(time.Millisecond) {
		return time.Duration(math.MinInt64)
	}
	return time.Duration(ms) * time.Millisecond
}
