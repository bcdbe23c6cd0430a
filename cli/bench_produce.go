package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

// Latency histogram bounds, in microseconds.
const (
	latencyMinMicros = 1
	latencyMaxMicros = int64(10 * time.Minute / time.Microsecond)
)

func benchProduceCommand() *cli.Command {
	return &cli.Command{
		Name:  "produce",
		Usage: "produce fixed-size records as fast as possible (or at --throughput) and report throughput and latency",
		Flags: withCommon(append([]cli.Flag{
			bootstrapServerFlag(),
			stringFlag("topic", "topic to produce to (created if missing)", "skein-bench"),
			int64Flag("num-records", "records to produce", 1_000_000),
			intFlag("record-size", "bytes per record value", 1024),
			float64Flag("throughput", "records per second to aim for (-1: unlimited)", -1),
			acksFlag(),
			intFlag("partitions", "partitions of the topic when it is created", 1),
			intFlag("replication-factor", "replication factor of the topic when it is created (-1: the broker's default)", -1),
			intFlag("batch-max-bytes", "producer batch size limit in bytes (0: the client's default)", 0),
			durationFlag("linger", "how long the producer waits to fill a batch (0: no linger)", 0),
			intFlag("max-buffered-records", "records the producer buffers before Produce blocks (0: the client's default)", 0),
			boolFlag("idempotent", "idempotent producer (needs --acks all)", true),
			stringFlag("compression", "batch compression: none, gzip, snappy, lz4, zstd", "none"),
			durationFlag("delivery-timeout", "fail a record not acknowledged after this long", 2*time.Minute),
		}, benchOutputFlags()...)...),
		Action: runBenchProduce,
	}
}

// produceResult is the final report; compare.sh reads the JSON form.
type produceResult struct {
	Records       int64   `json:"records"`
	Failed        int64   `json:"failed"`
	RecordSize    int     `json:"record_size"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	AvgMs         float64 `json:"avg_ms"`
	MaxMs         float64 `json:"max_ms"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	P999Ms        float64 `json:"p999_ms"`
}

// String is the kafka-producer-perf-test style summary line.
func (r produceResult) String() string {
	return fmt.Sprintf("%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency, %d ms 50th, %d ms 99th, %d ms 99.9th.",
		r.Records, r.RecordsPerSec, r.MBPerSec, r.AvgMs, r.MaxMs, int64(r.P50Ms), int64(r.P99Ms), int64(r.P999Ms))
}

// compressionCodec maps --compression onto franz-go's codec.
func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("unknown --compression %q: use none, gzip, snappy, lz4 or zstd", name)
}

// benchProducerOpts maps the bench flags onto franz-go producer options.
func benchProducerOpts(c *cli.Context, topic string) ([]kgo.Opt, error) {
	acks, err := parseAcks(c.String("acks"))
	if err != nil {
		return nil, err
	}
	codec, err := compressionCodec(c.String("compression"))
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(c.Duration("linger")),
	}
	if d := c.Duration("delivery-timeout"); d > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(d))
	}
	switch idempotent := c.Bool("idempotent"); {
	case idempotent && !isAllAcks(c.String("acks")) && c.IsSet("idempotent"):
		return nil, errors.New("--idempotent needs --acks all; add --idempotent=false for other acks")
	case !idempotent || !isAllAcks(c.String("acks")):
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if n := c.Int("batch-max-bytes"); n > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(min(n, 1<<30))))
	}
	if n := c.Int("max-buffered-records"); n > 0 {
		opts = append(opts, kgo.MaxBufferedRecords(n))
	}
	return opts, nil
}

// benchPayload is the one value every record carries: random capital
// letters, so compression cannot flatter the numbers much.
func benchPayload(size int) []byte {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'A' + byte(rand.IntN(26))
	}
	return payload
}

// producerBench is one running produce bench. The promise (done) runs on
// the client's goroutines; the histograms are guarded by mu.
type producerBench struct {
	records sync.Pool // *kgo.Record, reused across Produce calls

	acked  atomic.Int64
	failed atomic.Int64
	mu     struct {
		sync.Mutex
		total       *hdrhistogram.Histogram // every acked record's latency, µs
		window      *hdrhistogram.Histogram // since the last stats line, µs
		windowStart time.Time
		firstErr    error
	}
}

func newProducerBench() *producerBench {
	b := &producerBench{records: sync.Pool{New: func() any { return new(kgo.Record) }}}
	b.mu.total = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, 3)
	b.mu.window = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, 3)
	b.mu.windowStart = time.Now()
	return b
}

// done is the promise of every record: latency is from the Produce call
// (the record's timestamp) to the acknowledgement.
func (b *producerBench) done(r *kgo.Record, err error) {
	latency := time.Since(r.Timestamp).Microseconds()
	b.records.Put(r)
	if err != nil {
		b.failed.Add(1)
		b.mu.Lock()
		if b.mu.firstErr == nil {
			b.mu.firstErr = err
		}
		b.mu.Unlock()
		return
	}
	latency = min(max(latency, latencyMinMicros), latencyMaxMicros)
	b.mu.Lock()
	_ = b.mu.total.RecordValue(latency)
	_ = b.mu.window.RecordValue(latency)
	b.mu.Unlock()
	b.acked.Add(1)
}

// windowLine is the periodic stats line; it starts a new window.
func (b *producerBench) windowLine(recordSize int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	elapsed := now.Sub(b.mu.windowStart)
	n := b.mu.window.TotalCount()
	line := fmt.Sprintf("%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.",
		n, rate(float64(n), elapsed), rate(float64(n)*float64(recordSize)/bytesPerMB, elapsed),
		b.mu.window.Mean()/1000, float64(b.mu.window.Max())/1000)
	b.mu.window.Reset()
	b.mu.windowStart = now
	return line
}

func (b *producerBench) result(recordSize int, elapsed time.Duration) produceResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.mu.total
	n := h.TotalCount()
	return produceResult{
		Records:       n,
		Failed:        b.failed.Load(),
		RecordSize:    recordSize,
		Seconds:       elapsed.Seconds(),
		RecordsPerSec: rate(float64(n), elapsed),
		MBPerSec:      rate(float64(n)*float64(recordSize)/bytesPerMB, elapsed),
		AvgMs:         h.Mean() / 1000,
		MaxMs:         float64(h.Max()) / 1000,
		P50Ms:         float64(h.ValueAtQuantile(50)) / 1000,
		P99Ms:         float64(h.ValueAtQuantile(99)) / 1000,
		P999Ms:        float64(h.ValueAtQuantile(99.9)) / 1000,
	}
}

func (b *producerBench) firstErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.firstErr
}

// produceLoop produces num records of payload, paced to perSecond when it
// is positive, until ctx ends or a record fails. It returns how many
// records it handed to the client. Nothing is allocated per record beyond
// what the pool cannot reuse.
func (b *producerBench) produceLoop(ctx context.Context, cl *kgo.Client, payload []byte, num int64, perSecond float64) int64 {
	promise := b.done
	start := time.Now()
	var i int64
	for ; i < num; i++ {
		if ctx.Err() != nil || b.failed.Load() > 0 {
			break
		}
		if perSecond > 0 {
			due := start.Add(time.Duration(float64(i) / perSecond * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				time.Sleep(wait) // pacing to --throughput, not waiting for a condition
			}
		}
		r := b.records.Get().(*kgo.Record)
		*r = kgo.Record{Value: payload, Timestamp: time.Now()}
		cl.Produce(context.Background(), r, promise)
	}
	return i
}

func runBenchProduce(c *cli.Context) error {
	num := c.Int64("num-records")
	size := c.Int("record-size")
	switch {
	case num <= 0:
		return fmt.Errorf("--num-records %d: want at least 1", num)
	case size < 0 || size > 100<<20:
		return fmt.Errorf("--record-size %d: want 0..%d", size, 100<<20)
	}
	partitions, err := int32Value(c, "partitions")
	if err != nil {
		return err
	}
	rf, err := int16Value(c, "replication-factor")
	if err != nil {
		return err
	}
	topic := c.String("topic")
	opts, err := benchProducerOpts(c, topic)
	if err != nil {
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c, log, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := prepareBenchTopic(c.Context, cl, topic, partitions, rf); err != nil {
		return err
	}

	ctx, stop := signalContext(c)
	defer stop()
	b := newProducerBench()
	payload := benchPayload(size)
	log.Debug("bench produce starting", "topic", topic, "records", num, "record_size", size)

	show := startProgress(c.App.ErrWriter, showBar(c), num, "producing", c.Duration("report-interval"),
		b.acked.Load, func() string { return b.windowLine(size) })
	start := time.Now()
	sent := b.produceLoop(ctx, cl, payload, num, c.Float64("throughput"))
	stop() // a second SIGINT now kills the process if the flush hangs
	flushErr := cl.Flush(context.Background())
	elapsed := time.Since(start)
	show.stop()

	res := b.result(size, elapsed)
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.App.Writer, res.String())
	}
	switch {
	case flushErr != nil:
		return fmt.Errorf("flush: %w", flushErr)
	case res.Failed > 0:
		return fmt.Errorf("%d records failed, first error: %w", res.Failed, b.firstErr())
	case sent < num:
		return fmt.Errorf("interrupted after %d of %d records", sent, num)
	}
	return nil
}

// prepareBenchTopic creates the bench topic if it is missing.
func prepareBenchTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, rf int16) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return ensureTopic(ctx, kadm.NewClient(cl), topic, partitions, rf)
}
