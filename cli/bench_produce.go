package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
	"golang.org/x/sync/errgroup"
)

// Latency histogram bounds, in microseconds.
const (
	latencyMinMicros = 1
	latencyMaxMicros = int64(10 * time.Minute / time.Microsecond)
)

// slowRecord is the latency over which a record counts in over_50ms.
const slowRecord = 50 * time.Millisecond

// maxBenchClients bounds --clients.
const maxBenchClients = 1000

func benchProduceCommand() *cli.Command {
	return &cli.Command{
		Name:  "produce",
		Usage: "produce fixed-size records as fast as possible (or at --throughput) and report throughput and latency",
		Description: "Latency is from each record's Produce call to its acknowledgement. With --warmup, records\n" +
			"   produced in the warm-up are produced but left out of the report: its records, seconds, rates,\n" +
			"   latencies and CPU times cover the measured window, from the end of the warm-up to the end of\n" +
			"   the final flush. --server-pids reports the CPU time of the given processes (all their threads,\n" +
			"   from /proc/PID/stat) in that window, and per GB: per 1e9 bytes of acknowledged record values.",
		Flags: withCommon(append([]cli.Flag{
			bootstrapServerFlag(),
			stringFlag("topic", "topic to produce to (created if missing)", "skein-bench"),
			int64Flag("num-records", "records to produce, the warm-up's included", 1_000_000),
			intFlag("record-size", "bytes per record value", 1024),
			float64Flag("throughput", "records per second to aim for, all clients together (-1: unlimited)", -1),
			durationFlag("duration", "with --throughput: produce for this long after --warmup instead of --num-records (records = throughput x (warmup + duration))", 0),
			durationFlag("warmup", "produce for this long before measuring; those records are not in the report", 0),
			intFlag("clients", "independent producers (a client with its own connections each), sharing --throughput and --num-records", 1),
			stringFlag("server-pids", "comma-separated pids of the server processes whose CPU time to report (server_cpu_seconds, server_cpu_s_per_gb per 1e9 bytes of acknowledged values)", ""),
			acksFlag(),
			intFlag("partitions", "partitions of the topic when it is created", 1),
			intFlag("replication-factor", "replication factor of the topic when it is created (-1: the broker's default)", -1),
			intFlag("batch-max-bytes", "producer batch size limit in bytes (0: the client's default)", 0),
			durationFlag("linger", "how long the producer waits to fill a batch (0: no linger)", 0),
			intFlag("max-buffered-records", "records each producer buffers before Produce blocks (0: the client's default)", 0),
			boolFlag("idempotent", "idempotent producer (needs --acks all)", true),
			stringFlag("compression", "batch compression: none, gzip, snappy, lz4, zstd", "none"),
			durationFlag("delivery-timeout", "fail a record not acknowledged after this long", 2*time.Minute),
			stringFlag("transactional-id", "transactional producer: client k uses transactional id ID-k and commits a transaction every --txn-records records (needs --acks all)", ""),
			intFlag("txn-records", "with --transactional-id: records per transaction", 1000),
		}, benchOutputFlags()...)...),
		Action: runBenchProduce,
	}
}

// produceResult is the final report; compare.sh and compare-nats.sh read
// the JSON form. Everything but Clients and WarmupSeconds covers the
// measured window only (after the warm-up, to the end of the flush).
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
	P9999Ms       float64 `json:"p9999_ms"`
	// Over50Ms counts the records acknowledged more than 50 ms after their
	// Produce call.
	Over50Ms      int64   `json:"over_50ms"`
	WarmupSeconds float64 `json:"warmup_seconds"`
	Clients       int     `json:"clients"`
	// Transactions is how many transactions were committed
	// (--transactional-id), the warm-up's included.
	Transactions int64 `json:"transactions,omitempty"`
	// BehindMsMax is how far the paced generator fell behind its schedule
	// at worst (0 without --throughput): a saturated client shows here.
	BehindMsMax      float64 `json:"behind_ms_max"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	// Set with --server-pids only.
	ServerCPUSeconds *float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUSPerGB  *float64 `json:"server_cpu_s_per_gb,omitempty"`
}

// String is the kafka-producer-perf-test style summary line, with the
// extra figures after it.
func (r produceResult) String() string {
	s := fmt.Sprintf("%d records sent, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency, %d ms 50th, %d ms 99th, %d ms 99.9th, %d ms 99.99th; %d records over 50 ms; client CPU %.2f s",
		r.Records, r.RecordsPerSec, r.MBPerSec, r.AvgMs, r.MaxMs, int64(r.P50Ms), int64(r.P99Ms), int64(r.P999Ms), int64(r.P9999Ms),
		r.Over50Ms, r.ClientCPUSeconds)
	if r.ServerCPUSeconds != nil {
		s += fmt.Sprintf("; server CPU %.2f s (%.2f s/GB)", *r.ServerCPUSeconds, *r.ServerCPUSPerGB)
	}
	if r.BehindMsMax > 0 {
		s += fmt.Sprintf("; generator at most %.1f ms behind", r.BehindMsMax)
	}
	return s + "."
}

// withCPU fills in the CPU figures of the measured window.
func (r *produceResult) withCPU(used cpuSample, server bool) {
	r.ClientCPUSeconds = used.client.Seconds()
	if !server {
		return
	}
	seconds := used.server.Seconds()
	perGB := 0.0
	if bytes := float64(r.Records) * float64(r.RecordSize); bytes > 0 {
		perGB = seconds / (bytes / 1e9)
	}
	r.ServerCPUSeconds, r.ServerCPUSPerGB = &seconds, &perGB
}

// producePlan is what one run produces: how many records, how fast, by
// how many clients.
type producePlan struct {
	records   int64         // all clients' records, the warm-up's included
	perSecond float64       // all clients together; <= 0: unlimited
	warmup    time.Duration // not measured
	clients   int
}

// newProducePlan checks the flags and derives the record count: --duration
// (with --throughput) stands for --num-records.
func newProducePlan(numRecords int64, numSet bool, perSecond float64, duration, warmup time.Duration, clients int) (producePlan, error) {
	p := producePlan{records: numRecords, perSecond: perSecond, warmup: warmup, clients: clients}
	switch {
	case clients < 1 || clients > maxBenchClients:
		return p, fmt.Errorf("--clients %d: want 1..%d", clients, maxBenchClients)
	case warmup < 0:
		return p, fmt.Errorf("--warmup %s: want 0 or more", warmup)
	case duration < 0:
		return p, fmt.Errorf("--duration %s: want 0 or more", duration)
	case duration > 0 && perSecond <= 0:
		return p, errors.New("--duration needs --throughput: the record count is throughput x (warmup + duration)")
	case duration > 0 && numSet:
		return p, errors.New("give --num-records or --duration, not both")
	}
	if duration > 0 {
		p.records = int64(math.Round(perSecond * (warmup + duration).Seconds()))
	}
	if p.records <= 0 {
		return p, fmt.Errorf("%d records: want at least 1", p.records)
	}
	return p, nil
}

// schedule returns client k's share: every clients-th record, starting at
// the k-th, so the remainder goes to the first clients and the clients'
// records interleave evenly in time.
func (p producePlan) schedule(start time.Time, k int) schedule {
	n, stride := p.records, int64(p.clients)
	num := n / stride
	if int64(k) < n%stride {
		num++
	}
	return schedule{start: start, first: int64(k), stride: stride, num: num, perSecond: p.perSecond}
}

// schedule is one client's records: its record i is record first+i*stride
// of the run, due at (first+i*stride)/perSecond after the start.
type schedule struct {
	start     time.Time
	first     int64
	stride    int64
	num       int64   // this client's records
	perSecond float64 // the whole run's; <= 0: unpaced
}

// due is when this client's record i is due.
func (s schedule) due(i int64) time.Time {
	return s.start.Add(time.Duration(float64(s.first+i*s.stride) / s.perSecond * float64(time.Second)))
}

// dueBy is how many of this client's records are due elapsed after the
// start (at most num).
func (s schedule) dueBy(elapsed time.Duration) int64 {
	last := int64(math.Floor(elapsed.Seconds() * s.perSecond)) // the run's last due record
	if last < s.first {
		return 0
	}
	return min(s.num, (last-s.first)/s.stride+1)
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
	if id := c.String("transactional-id"); id != "" {
		if !isAllAcks(c.String("acks")) || !c.Bool("idempotent") {
			return nil, errors.New("--transactional-id needs --acks all and an idempotent producer")
		}
		if c.Int("txn-records") < 1 {
			return nil, fmt.Errorf("--txn-records %d: want at least 1", c.Int("txn-records"))
		}
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

// benchRecord is a pooled record with its Produce call's time: franz-go
// truncates Record.Timestamp to the millisecond, which would add up to
// 1 ms to every latency. It is its own record's Context (never cancelled),
// so the promise finds it again without an allocation.
type benchRecord struct {
	context.Context // context.Background()
	rec             kgo.Record
	sent            time.Time
}

// producerBench is one running produce bench, shared by its clients. The
// promise (done) runs on the clients' goroutines; the histograms are
// guarded by mu.
type producerBench struct {
	records sync.Pool // *benchRecord, reused across Produce calls
	// measureStart is the end of the warm-up: records produced before it
	// are not measured. Set before the first record.
	measureStart time.Time

	acked atomic.Int64 // every record, the warm-up's included
	// transactions counts the committed transactions (txnProduceLoop).
	transactions atomic.Int64
	failed       atomic.Int64
	behindNanos  atomic.Int64 // max over the clients
	mu           struct {
		sync.Mutex
		total       *hdrhistogram.Histogram // every measured record's latency, µs
		over        int64                   // measured records slower than slowRecord
		window      *hdrhistogram.Histogram // since the last stats line, µs
		windowStart time.Time
		firstErr    error
	}
}

func newProducerBench(measureStart time.Time) *producerBench {
	b := &producerBench{measureStart: measureStart}
	b.records.New = func() any { return &benchRecord{Context: context.Background()} }
	b.mu.total = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, 3)
	b.mu.window = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, 3)
	b.mu.windowStart = time.Now()
	return b
}

// done is the promise of every record: latency is from the Produce call
// to the acknowledgement.
func (b *producerBench) done(r *kgo.Record, err error) {
	now := time.Now()
	br := r.Context.(*benchRecord)
	sent := br.sent
	b.records.Put(br)
	b.observe(sent, now, err)
}

// observe accounts one record produced at sent and acknowledged (or
// failed) at acked.
func (b *producerBench) observe(sent, acked time.Time, err error) {
	if err != nil {
		b.failed.Add(1)
		b.mu.Lock()
		if b.mu.firstErr == nil {
			b.mu.firstErr = err
		}
		b.mu.Unlock()
		return
	}
	latency := acked.Sub(sent)
	micros := min(max(latency.Microseconds(), latencyMinMicros), latencyMaxMicros)
	measured := !sent.Before(b.measureStart)
	b.mu.Lock()
	_ = b.mu.window.RecordValue(micros)
	if measured {
		_ = b.mu.total.RecordValue(micros)
		if latency > slowRecord {
			b.mu.over++
		}
	}
	b.mu.Unlock()
	b.acked.Add(1)
}

// noteBehind keeps the largest lag of a client's generator.
func (b *producerBench) noteBehind(d time.Duration) {
	for {
		cur := b.behindNanos.Load()
		if int64(d) <= cur || b.behindNanos.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// windowLine is the periodic stats line; it starts a new window. It counts
// the warm-up's records too.
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

// result is the report of the measured records over elapsed, the length
// of the measured window.
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
		P9999Ms:       float64(h.ValueAtQuantile(99.99)) / 1000,
		Over50Ms:      b.mu.over,
		BehindMsMax:   float64(b.behindNanos.Load()) / float64(time.Millisecond),
	}
}

func (b *producerBench) firstErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.firstErr
}

// produceLoop produces one client's records of payload on its schedule
// until ctx ends or a record fails. It returns how many records it handed
// to the client. Nothing is allocated per record beyond what the pool
// cannot reuse.
//
// Pacing is open-loop: after each sleep, every record due by then goes out
// at once. Sleeps overshoot (short ones by about a millisecond when the
// runtime parks in the network poller) and a slow Produce call (a full
// buffer) delays the next records; catching up keeps the offered load at
// --throughput instead of drifting below it, and the largest lag behind
// the schedule in the measured window goes to behind_ms_max.
func (b *producerBench) produceLoop(ctx context.Context, cl *kgo.Client, payload []byte, s schedule) int64 {
	promise := b.done
	paced := s.perSecond > 0
	var behind time.Duration
	defer func() { b.noteBehind(behind) }()
	var i int64
	for i < s.num {
		burst := s.num
		if paced {
			if wait := time.Until(s.due(i)); wait > 0 {
				time.Sleep(wait) // pacing to --throughput, not waiting for a condition
			}
			burst = max(i+1, s.dueBy(time.Since(s.start)))
		}
		for ; i < burst; i++ {
			if ctx.Err() != nil || b.failed.Load() > 0 {
				return i
			}
			br := b.records.Get().(*benchRecord)
			now := time.Now()
			br.rec = kgo.Record{Value: payload, Timestamp: now, Context: br}
			br.sent = now
			if paced && !now.Before(b.measureStart) {
				behind = max(behind, now.Sub(s.due(i)))
			}
			cl.Produce(context.Background(), &br.rec, promise)
		}
	}
	return i
}

func runBenchProduce(c *cli.Context) error {
	size := c.Int("record-size")
	if size < 0 || size > 100<<20 {
		return fmt.Errorf("--record-size %d: want 0..%d", size, 100<<20)
	}
	plan, err := newProducePlan(c.Int64("num-records"), c.IsSet("num-records"), c.Float64("throughput"),
		c.Duration("duration"), c.Duration("warmup"), c.Int("clients"))
	if err != nil {
		return err
	}
	pids, err := parsePids(c.String("server-pids"))
	if err != nil {
		return err
	}
	if _, err := processCPU(pids); err != nil { // a wrong pid fails now, not after the run
		return fmt.Errorf("--server-pids: %w", err)
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
	clients := make([]*kgo.Client, 0, plan.clients)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for k := range plan.clients {
		copts := opts
		if id := c.String("transactional-id"); id != "" {
			copts = append(copts[:len(copts):len(copts)], kgo.TransactionalID(fmt.Sprintf("%s-%d", id, k)))
		}
		cl, err := newClient(c, log, copts...)
		if err != nil {
			return err
		}
		clients = append(clients, cl)
	}
	if err := prepareBenchTopic(c.Context, clients[0], topic, partitions, rf); err != nil {
		return err
	}

	ctx, stop := signalContext(c)
	defer stop()
	payload := benchPayload(size)
	log.Debug("bench produce starting", "topic", topic, "records", plan.records, "record_size", size,
		"clients", plan.clients, "warmup", plan.warmup)

	start := time.Now()
	b := newProducerBench(start.Add(plan.warmup))
	show := startProgress(c.App.ErrWriter, showBar(c), plan.records, "producing", c.Duration("report-interval"),
		b.acked.Load, func() string { return b.windowLine(size) })
	cpu := startCPUWindow(pids, b.measureStart)
	var sent atomic.Int64
	var producers sync.WaitGroup
	txnRecords := int64(c.Int("txn-records"))
	transactional := c.String("transactional-id") != ""
	for k, cl := range clients {
		if transactional {
			producers.Go(func() { sent.Add(b.txnProduceLoop(ctx, cl, payload, plan.schedule(start, k), txnRecords)) })
			continue
		}
		producers.Go(func() { sent.Add(b.produceLoop(ctx, cl, payload, plan.schedule(start, k))) })
	}
	producers.Wait()
	stop() // a second SIGINT now kills the process if the flush hangs
	flushErr := flushAll(clients)
	end := time.Now()
	used, cpuErr := cpu.end()
	show.stop()

	res := b.result(size, end.Sub(b.measureStart))
	res.Clients, res.WarmupSeconds = plan.clients, plan.warmup.Seconds()
	res.Transactions = b.transactions.Load()
	res.withCPU(used, len(pids) > 0)
	if cpuErr == nil {
		if c.Bool("json") {
			if err := writeJSON(c.App.Writer, res); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(c.App.Writer, res.String())
		}
	}
	switch {
	case flushErr != nil:
		return fmt.Errorf("flush: %w", flushErr)
	case res.Failed > 0:
		return fmt.Errorf("%d records failed, first error: %w", res.Failed, b.firstErr())
	case sent.Load() < plan.records:
		return fmt.Errorf("interrupted after %d of %d records", sent.Load(), plan.records)
	}
	return cpuErr
}

// flushAll waits until every client's buffered records are acknowledged
// or failed.
func flushAll(clients []*kgo.Client) error {
	var g errgroup.Group
	for _, cl := range clients {
		g.Go(func() error { return cl.Flush(context.Background()) })
	}
	return g.Wait()
}

// prepareBenchTopic creates the bench topic if it is missing.
func prepareBenchTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, rf int16) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ensureTopic(ctx, kadm.NewClient(cl), topic, partitions, rf, nil); err != nil {
		return err
	}
	return waitTopicLed(ctx, cl, topic)
}

// waitTopicLed waits until every broker's metadata names a leader for
// every partition of topic, so the first records do not meet a broker that
// has not heard of a just-created topic yet (franz-go backs off about
// 250 ms on UNKNOWN_TOPIC_OR_PARTITION, which would count as latency).
func waitTopicLed(ctx context.Context, cl *kgo.Client, topic string) error {
	adm := kadm.NewClient(cl)
	var last string
	for {
		brokers, err := adm.ListBrokers(ctx)
		ready := err == nil && len(brokers) > 0
		last = fmt.Sprint(err)
		for _, b := range brokers {
			req := kmsg.NewPtrMetadataRequest()
			t := kmsg.NewMetadataRequestTopic()
			t.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, t)
			resp, err := req.RequestWith(ctx, cl.Broker(int(b.NodeID)))
			if err != nil || !allLed(resp, topic) {
				ready, last = false, fmt.Sprintf("broker %d has no leader for every partition yet (%v)", b.NodeID, err)
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s: %s", topic, last)
		case <-time.After(50 * time.Millisecond): // polling the brokers' metadata
		}
	}
}

// allLed reports whether resp lists topic with a leader for every
// partition.
func allLed(resp *kmsg.MetadataResponse, topic string) bool {
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if t.ErrorCode != 0 || len(t.Partitions) == 0 {
			return false
		}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 || p.Leader < 0 {
				return false
			}
		}
		return true
	}
	return false
}

// txnProduceLoop is produceLoop for a transactional producer: the records
// go in transactions of txnRecords, each flushed and committed before the
// next begins. A failed transaction counts as a failure and ends the loop.
func (b *producerBench) txnProduceLoop(ctx context.Context, cl *kgo.Client, payload []byte, s schedule, txnRecords int64) int64 {
	promise := b.done
	var i int64
	fail := func(err error) int64 {
		b.observe(time.Now(), time.Now(), err)
		return i
	}
	for i < s.num {
		if ctx.Err() != nil || b.failed.Load() > 0 {
			return i
		}
		if err := cl.BeginTransaction(); err != nil {
			return fail(fmt.Errorf("begin transaction: %w", err))
		}
		end := min(s.num, i+txnRecords)
		for ; i < end; i++ {
			if s.perSecond > 0 {
				if wait := time.Until(s.due(i)); wait > 0 {
					time.Sleep(wait) // pacing to --throughput, not waiting for a condition
				}
			}
			br := b.records.Get().(*benchRecord)
			now := time.Now()
			br.rec = kgo.Record{Value: payload, Timestamp: now, Context: br}
			br.sent = now
			cl.Produce(context.Background(), &br.rec, promise)
		}
		// EndTransaction does not flush: the records must be acknowledged
		// first, or they would fall outside the transaction.
		if err := cl.Flush(context.Background()); err != nil {
			return fail(fmt.Errorf("flush transaction: %w", err))
		}
		if err := cl.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
			return fail(fmt.Errorf("commit transaction: %w", err))
		}
		b.transactions.Add(1)
	}
	return i
}
