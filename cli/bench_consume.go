package cli

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

func benchConsumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "consume",
		Usage: "read a topic from the beginning and report throughput, like kafka-consumer-perf-test",
		Flags: withCommon(append([]cli.Flag{
			bootstrapServerFlag(),
			stringFlag("topic", "topic to read", "skein-bench"),
			int64Flag("num-records", "records to read", 1_000_000),
			durationFlag("timeout", "stop when no record arrived for this long (0: wait forever)", 10*time.Second),
			stringFlag("group", "consume as a member of this consumer group (committing offsets as it goes) instead of assigning every partition directly", ""),
		}, benchOutputFlags()...)...),
		Action: runBenchConsume,
	}
}

// consumeResult is the final report of bench consume.
type consumeResult struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	// FirstRecordMs is how long the first record took to arrive (with
	// --group: joining the group, the assignment and the offset fetch).
	FirstRecordMs float64 `json:"first_record_ms"`
}

func (r consumeResult) String() string {
	return fmt.Sprintf("%d records received, %.1f records/sec (%.2f MB/sec), %.2f MB in %.2f s, first record after %.0f ms.",
		r.Records, r.RecordsPerSec, r.MBPerSec, float64(r.Bytes)/bytesPerMB, r.Seconds, r.FirstRecordMs)
}

func newConsumeResult(records, bytes int64, elapsed time.Duration) consumeResult {
	return consumeResult{
		Records:       records,
		Bytes:         bytes,
		Seconds:       elapsed.Seconds(),
		RecordsPerSec: rate(float64(records), elapsed),
		MBPerSec:      rate(float64(bytes)/bytesPerMB, elapsed),
	}
}

func runBenchConsume(c *cli.Context) error {
	num := c.Int64("num-records")
	if num <= 0 {
		return fmt.Errorf("--num-records %d: want at least 1", num)
	}
	topic := c.String("topic")
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	if g := c.String("group"); g != "" {
		// franz-go's defaults: cooperative-sticky, commits every 5 s and
		// on revoke and close.
		opts = append(opts, kgo.ConsumerGroup(g))
	}
	cl, err := newClient(c, log, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := checkTopicExists(c.Context, kadm.NewClient(cl), topic); err != nil {
		return err
	}

	ctx, stop := signalContext(c)
	defer stop()
	idle := c.Duration("timeout")
	var records, bytes atomic.Int64
	var windowStart = time.Now()
	var windowRecords, windowBytes int64
	show := startProgress(c.App.ErrWriter, showBar(c), num, "consuming", c.Duration("report-interval"), records.Load,
		func() string {
			now := time.Now()
			n, b := records.Load(), bytes.Load()
			elapsed := now.Sub(windowStart)
			line := fmt.Sprintf("%d records received, %.1f records/sec (%.2f MB/sec).", n-windowRecords,
				rate(float64(n-windowRecords), elapsed), rate(float64(b-windowBytes)/bytesPerMB, elapsed))
			windowStart, windowRecords, windowBytes = now, n, b
			return line
		})
	start := time.Now()
	last := start
	var first time.Time
	var fetchErr error
	for records.Load() < num && ctx.Err() == nil && fetchErr == nil {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if idle > 0 {
			pollCtx, cancel = context.WithTimeout(ctx, idle)
		}
		fetches := cl.PollRecords(pollCtx, int(min(num-records.Load(), 1<<20)))
		timedOut := errors.Is(pollCtx.Err(), context.DeadlineExceeded)
		cancel()
		if fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		var n, size int64
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			size += int64(len(r.Key) + len(r.Value))
		})
		if n > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			records.Add(n)
			bytes.Add(size)
			last = time.Now()
		} else if timedOut {
			break
		}
	}
	show.stop()
	// Throughput counts from the first record to the last: not the idle
	// wait after it, nor the wait before it (with --group, the group's
	// initial rebalance delay), which is reported on its own.
	from := start
	if !first.IsZero() && last.After(first) {
		from = first
	}
	res := newConsumeResult(records.Load(), bytes.Load(), last.Sub(from))
	if !first.IsZero() {
		res.FirstRecordMs = float64(first.Sub(start).Microseconds()) / 1000
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.App.Writer, res.String())
	}
	switch {
	case fetchErr != nil:
		return fetchErr
	case res.Records == 0 && ctx.Err() == nil:
		return fmt.Errorf("no record of topic %s arrived within --timeout %s; fill it with `skein bench produce --topic %s`", topic, idle, topic)
	case res.Records < num && ctx.Err() == nil:
		return fmt.Errorf("read only %d of %d records before --timeout %s", res.Records, num, idle)
	}
	return nil
}

// checkTopicExists fails with advice when topic is missing.
func checkTopicExists(ctx context.Context, adm *kadm.Client, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("look up topic %s: %w", topic, err)
	}
	if d, ok := topics[topic]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("topic %s does not exist; fill it with `skein bench produce --topic %s`", topic, topic)
	}
	return nil
}
