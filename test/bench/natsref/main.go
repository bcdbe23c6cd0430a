// Command natsref is the JetStream side of the fixed-rate phase of
// test/bench/compare-nats.sh; it is never part of skein itself (a module of
// its own, so skein does not depend on the NATS client).
//
// It does what `skein bench produce --clients N --throughput R --warmup W
// --duration D` does for skein: N connections publish asynchronously to one
// stream at R messages per second in all, open loop (every message due by
// the time the pacer wakes goes out at once), and each message's latency
// runs from its publish call to its acknowledgement; messages published in
// the warm-up are not measured. It prints one JSON object with the same
// fields as `skein bench produce --json`. `nats bench js pub --throughput`
// cannot stand in: it times a batch of publishes less the pacing sleeps it
// asked for, so every sleep's overshoot counts as latency (its figures grow
// with --batch at a fixed rate).
//
//	natsref --server URLS --stream S --subject S [--create --replicas 3] \
//	        --clients 4 --rate 20000 --warmup 5s --duration 30s --size 1024 \
//	        [--server-pids 1,2,3]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Latency histogram bounds in microseconds, and the over_50ms mark: as
// skein bench produce.
const (
	latencyMinMicros = 1
	latencyMaxMicros = int64(10 * time.Minute / time.Microsecond)
	slowMessage      = 50 * time.Millisecond
	bytesPerMB       = 1024 * 1024
	userHZ           = 100 // the unit of /proc/PID/stat CPU times on Linux
)

type config struct {
	servers, stream, subject string
	create                   bool
	replicas                 int
	maxBytes                 int64
	clients                  int
	rate                     float64
	warmup, duration         time.Duration
	size                     int
	maxPending               int
	serverPids               []int
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "natsref:", err)
		os.Exit(1)
	}
}

func run() error {
	var c config
	var pids string
	flag.StringVar(&c.servers, "server", nats.DefaultURL, "NATS server URLs, comma-separated")
	flag.StringVar(&c.stream, "stream", "bench", "stream the subject belongs to")
	flag.StringVar(&c.subject, "subject", "bench", "subject to publish to")
	flag.BoolVar(&c.create, "create", false, "create the stream (file storage, --replicas) first")
	flag.IntVar(&c.replicas, "replicas", 3, "replicas of a created stream")
	flag.Int64Var(&c.maxBytes, "max-bytes", -1, "max bytes of a created stream (-1: unlimited)")
	flag.IntVar(&c.clients, "clients", 4, "connections, each publishing rate/clients messages per second")
	flag.Float64Var(&c.rate, "rate", 20000, "messages per second, all clients together")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "publish for this long before measuring")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "publish for this long after the warm-up")
	flag.IntVar(&c.size, "size", 1024, "bytes per message (random, incompressible)")
	flag.IntVar(&c.maxPending, "max-pending", 100_000, "unacknowledged publishes per client before a publish stalls")
	flag.StringVar(&pids, "server-pids", "", "comma-separated pids of the servers whose CPU time to report")
	flag.Parse()
	for _, p := range strings.Split(pids, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return fmt.Errorf("--server-pids: %q is not a process id", p)
		}
		c.serverPids = append(c.serverPids, pid)
	}
	switch {
	case c.clients < 1:
		return fmt.Errorf("--clients %d: want at least 1", c.clients)
	case c.rate <= 0 || c.duration <= 0 || c.warmup < 0:
		return errors.New("want --rate > 0, --duration > 0 and --warmup >= 0")
	case c.size < 0:
		return fmt.Errorf("--size %d: want 0 or more", c.size)
	}
	if _, err := processCPU(c.serverPids); err != nil {
		return fmt.Errorf("--server-pids: %w", err)
	}
	if c.create {
		if err := createStream(c); err != nil {
			return err
		}
	}
	res, err := measure(c)
	if err != nil {
		return err
	}
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

func createStream(c config) error {
	nc, err := nats.Connect(c.servers)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: c.stream, Subjects: []string{c.subject},
		Replicas: c.replicas, Storage: jetstream.FileStorage, MaxBytes: c.maxBytes})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", c.stream, err)
	}
	return nil
}

// result has the fields of skein bench produce's JSON report.
type result struct {
	Records          int64   `json:"records"`
	Failed           int64   `json:"failed"`
	RecordSize       int     `json:"record_size"`
	Seconds          float64 `json:"seconds"`
	RecordsPerSec    float64 `json:"records_per_sec"`
	MBPerSec         float64 `json:"mb_per_sec"`
	AvgMs            float64 `json:"avg_ms"`
	MaxMs            float64 `json:"max_ms"`
	P50Ms            float64 `json:"p50_ms"`
	P99Ms            float64 `json:"p99_ms"`
	P999Ms           float64 `json:"p999_ms"`
	P9999Ms          float64 `json:"p9999_ms"`
	Over50Ms         int64   `json:"over_50ms"`
	WarmupSeconds    float64 `json:"warmup_seconds"`
	Clients          int     `json:"clients"`
	BehindMsMax      float64 `json:"behind_ms_max"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	ServerCPUSPerGB  float64 `json:"server_cpu_s_per_gb"`
}

// bench is the state the clients share.
type bench struct {
	measureStart time.Time
	behindNanos  atomic.Int64
	failed       atomic.Int64
	mu           struct {
		sync.Mutex
		hist     *hdrhistogram.Histogram // measured latencies, µs
		over     int64
		firstErr error
	}
}

func (b *bench) observe(sent, acked time.Time, err error) {
	if err != nil {
		b.failed.Add(1)
		b.mu.Lock()
		if b.mu.firstErr == nil {
			b.mu.firstErr = err
		}
		b.mu.Unlock()
		return
	}
	if sent.Before(b.measureStart) {
		return
	}
	latency := acked.Sub(sent)
	b.mu.Lock()
	_ = b.mu.hist.RecordValue(min(max(latency.Microseconds(), latencyMinMicros), latencyMaxMicros))
	if latency > slowMessage {
		b.mu.over++
	}
	b.mu.Unlock()
}

func (b *bench) noteBehind(d time.Duration) {
	for {
		cur := b.behindNanos.Load()
		if int64(d) <= cur || b.behindNanos.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

type cpuSample struct{ server, client time.Duration }

func measure(c config) (result, error) {
	payload := make([]byte, c.size)
	_, _ = rand.Read(payload)
	total := int64(math.Round(c.rate * (c.warmup + c.duration).Seconds()))

	// Every client connects before the clock starts.
	conns := make([]*nats.Conn, c.clients)
	for k := range conns {
		nc, err := nats.Connect(c.servers, nats.Name(fmt.Sprintf("natsref-%d", k)))
		if err != nil {
			return result{}, fmt.Errorf("connect: %w", err)
		}
		defer nc.Close()
		conns[k] = nc
	}

	start := time.Now()
	b := &bench{measureStart: start.Add(c.warmup)}
	b.mu.hist = hdrhistogram.New(latencyMinMicros, latencyMaxMicros, 3)
	var before cpuSample
	var beforeErr error
	beforeTaken := make(chan struct{})
	time.AfterFunc(c.warmup, func() {
		before, beforeErr = sampleCPU(c.serverPids)
		close(beforeTaken)
	})

	var wg sync.WaitGroup
	for k, nc := range conns {
		wg.Go(func() {
			if err := publish(b, nc, c, payload, start, int64(k), total); err != nil {
				b.observe(time.Time{}, time.Time{}, err)
			}
		})
	}
	wg.Wait()
	end := time.Now()
	<-beforeTaken // the run lasts longer than the warm-up
	if beforeErr != nil {
		return result{}, beforeErr
	}
	after, err := sampleCPU(c.serverPids)
	if err != nil {
		return result{}, err
	}
	if n := b.failed.Load(); n > 0 {
		// JetStream refusing publishes (e.g. 429 too many requests when it
		// cannot keep up) is a result, not a failure of the tool: report
		// it and the latency of what was acknowledged.
		fmt.Fprintf(os.Stderr, "natsref: %d publishes failed, first error: %v\n", n, b.mu.firstErr)
	}

	h := b.mu.hist
	elapsed := end.Sub(b.measureStart).Seconds()
	n := h.TotalCount()
	server := (after.server - before.server).Seconds()
	perGB := 0.0
	if bytes := float64(n) * float64(c.size); bytes > 0 {
		perGB = server / (bytes / 1e9)
	}
	return result{
		Records: n, Failed: b.failed.Load(), RecordSize: c.size, Seconds: elapsed,
		RecordsPerSec: float64(n) / elapsed, MBPerSec: float64(n) * float64(c.size) / bytesPerMB / elapsed,
		AvgMs: h.Mean() / 1000, MaxMs: float64(h.Max()) / 1000,
		P50Ms: float64(h.ValueAtQuantile(50)) / 1000, P99Ms: float64(h.ValueAtQuantile(99)) / 1000,
		P999Ms: float64(h.ValueAtQuantile(99.9)) / 1000, P9999Ms: float64(h.ValueAtQuantile(99.99)) / 1000,
		Over50Ms: b.mu.over, WarmupSeconds: c.warmup.Seconds(), Clients: c.clients,
		BehindMsMax:      float64(b.behindNanos.Load()) / float64(time.Millisecond),
		ClientCPUSeconds: (after.client - before.client).Seconds(),
		ServerCPUSeconds: server, ServerCPUSPerGB: perGB,
	}, nil
}

// pending is one publish waiting for its acknowledgement.
type pending struct {
	ack  jetstream.PubAckFuture
	sent time.Time
}

// publish sends client k's messages (the run's messages k, k+clients, ...,
// the j-th due j/rate after start) and waits for their acknowledgements,
// which a single stream returns in order.
func publish(b *bench, nc *nats.Conn, c config, payload []byte, start time.Time, k, total int64) error {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(c.maxPending))
	if err != nil {
		return err
	}
	stride := int64(c.clients)
	acks := make(chan pending, c.maxPending)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range acks {
			select {
			case <-p.ack.Ok():
				b.observe(p.sent, time.Now(), nil)
			case err := <-p.ack.Err():
				b.observe(p.sent, time.Now(), err)
			}
		}
	}()
	defer func() {
		close(acks)
		<-done
	}()

	due := func(j int64) time.Time { return start.Add(time.Duration(float64(j) / c.rate * float64(time.Second))) }
	var behind time.Duration
	defer func() { b.noteBehind(behind) }()
	for j := k; j < total; {
		if wait := time.Until(due(j)); wait > 0 {
			time.Sleep(wait) // pacing to --rate, not waiting for a condition
		}
		last := min(total-1, max(j, int64(math.Floor(time.Since(start).Seconds()*c.rate)))) // the run's last due message
		for ; j <= last; j += stride {
			sent := time.Now()
			if !sent.Before(b.measureStart) {
				behind = max(behind, sent.Sub(due(j)))
			}
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: c.subject, Data: payload})
			if err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			acks <- pending{ack: f, sent: sent}
		}
	}
	return nil
}

func sampleCPU(pids []int) (cpuSample, error) {
	var s cpuSample
	var err error
	if s.server, err = processCPU(pids); err != nil {
		return s, err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, fmt.Errorf("getrusage: %w", err)
	}
	s.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return s, nil
}

// processCPU sums utime and stime (fields 14 and 15 of /proc/PID/stat,
// every thread of the process) of the pids.
func processCPU(pids []int) (time.Duration, error) {
	var ticks uint64
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		fields := bytes.Fields(stat[bytes.LastIndexByte(stat, ')')+1:])
		if len(fields) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: %d fields after the command", pid, len(fields))
		}
		for _, f := range fields[11:13] {
			n, err := strconv.ParseUint(string(f), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
			}
			ticks += n
		}
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}
