package cli

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProducerBenchObserve(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	b := newProducerBench(t0)
	// Warm-up records, slower than anything measured: not in the report.
	for i := range 100 {
		sent := t0.Add(-time.Second + time.Duration(i)*time.Millisecond)
		b.observe(sent, sent.Add(5*time.Second), nil)
	}
	// Measured: latencies 1, 2, ..., 1000 ms, in a shuffled order.
	for _, ms := range shuffled(1000) {
		sent := t0.Add(time.Duration(ms) * time.Microsecond)
		b.observe(sent, sent.Add(time.Duration(ms)*time.Millisecond), nil)
	}
	// Just over and exactly at the 50 ms mark.
	b.observe(t0, t0.Add(50*time.Millisecond+time.Microsecond), nil)
	b.observe(t0, t0.Add(50*time.Millisecond), nil)

	res := b.result(1024, 2*time.Second)
	if res.Records != 1002 || res.Failed != 0 {
		t.Fatalf("records %d failed %d, want 1002 measured, none failed", res.Records, res.Failed)
	}
	if got := b.acked.Load(); got != 1102 {
		t.Errorf("acked %d, want 1102 (warm-up included)", got)
	}
	// 951..1000 ms and the 50.001 ms record are over 50 ms; 50 ms is not.
	if res.Over50Ms != 951 {
		t.Errorf("over_50ms = %d, want 951", res.Over50Ms)
	}
	// hdrhistogram keeps 3 significant digits.
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > want*0.002 {
			t.Errorf("%s = %.3f ms, want %.3f", name, got, want)
		}
	}
	near("p50", res.P50Ms, 500)
	near("p99", res.P99Ms, 990)
	near("p99.9", res.P999Ms, 999)
	near("p99.99", res.P9999Ms, 1000)
	near("max", res.MaxMs, 1000)
	near("records/s", res.RecordsPerSec, 501)
	if !(res.P50Ms <= res.P99Ms && res.P99Ms <= res.P999Ms && res.P999Ms <= res.P9999Ms && res.P9999Ms <= res.MaxMs) {
		t.Errorf("quantiles out of order: %+v", res)
	}

	b.observe(t0, t0.Add(time.Millisecond), errors.New("boom"))
	if res := b.result(1024, time.Second); res.Failed != 1 || res.Records != 1002 {
		t.Errorf("after a failure: failed %d records %d, want 1 and 1002", res.Failed, res.Records)
	}
}

func shuffled(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = (i*7919)%n + 1 // 7919 is prime, so this is a permutation of 1..n
	}
	return out
}

func TestNoteBehindKeepsMax(t *testing.T) {
	b := newProducerBench(time.Now())
	for _, d := range []time.Duration{3 * time.Millisecond, time.Millisecond, 7 * time.Millisecond, 0} {
		b.noteBehind(d)
	}
	if got := b.result(1, time.Second).BehindMsMax; got != 7 {
		t.Errorf("behind_ms_max = %v, want 7", got)
	}
}

func TestNewProducePlan(t *testing.T) {
	tests := []struct {
		name      string
		num       int64
		numSet    bool
		perSecond float64
		duration  time.Duration
		warmup    time.Duration
		clients   int
		want      int64
		wantErr   bool
	}{
		{name: "num records", num: 1000, numSet: true, perSecond: -1, clients: 1, want: 1000},
		{name: "default num records", num: 1_000_000, perSecond: 20000, warmup: 5 * time.Second, clients: 4, want: 1_000_000},
		{name: "duration and warmup", num: 1_000_000, perSecond: 20000, duration: 30 * time.Second, warmup: 5 * time.Second, clients: 4, want: 700_000},
		{name: "duration rounds", num: 1, perSecond: 333.3, duration: time.Second, clients: 1, want: 333},
		{name: "duration without throughput", num: 1, perSecond: -1, duration: time.Second, clients: 1, wantErr: true},
		{name: "duration and num records", num: 5, numSet: true, perSecond: 100, duration: time.Second, clients: 1, wantErr: true},
		{name: "no records", num: 0, numSet: true, perSecond: -1, clients: 1, wantErr: true},
		{name: "duration too short", num: 1, perSecond: 1, duration: time.Millisecond, clients: 1, wantErr: true},
		{name: "no clients", num: 10, perSecond: -1, clients: 0, wantErr: true},
		{name: "too many clients", num: 10, perSecond: -1, clients: maxBenchClients + 1, wantErr: true},
		{name: "negative warmup", num: 10, perSecond: -1, warmup: -time.Second, clients: 1, wantErr: true},
		{name: "negative duration", num: 10, perSecond: 10, duration: -time.Second, clients: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := newProducePlan(tt.num, tt.numSet, tt.perSecond, tt.duration, tt.warmup, tt.clients)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && p.records != tt.want {
				t.Errorf("records = %d, want %d", p.records, tt.want)
			}
		})
	}
}

// TestScheduleShares: the clients' shares add up to the run, spread the
// remainder, and interleave evenly in time.
func TestScheduleShares(t *testing.T) {
	start := time.Unix(0, 0)
	p := producePlan{records: 10, perSecond: 1000, clients: 4}
	var counts []int64
	due := map[time.Duration]int{}
	for k := range p.clients {
		s := p.schedule(start, k)
		counts = append(counts, s.num)
		for i := range s.num {
			due[s.due(i).Sub(start)]++
		}
	}
	if !slices.Equal(counts, []int64{3, 3, 2, 2}) {
		t.Errorf("shares %v, want [3 3 2 2]", counts)
	}
	for j := range 10 { // one record every millisecond
		if d := time.Duration(j) * time.Millisecond; due[d] != 1 {
			t.Errorf("%d records due at %v, want 1 (all: %v)", due[d], d, due)
		}
	}
}

func TestScheduleDueBy(t *testing.T) {
	s := producePlan{records: 10, perSecond: 1000, clients: 4}.schedule(time.Unix(0, 0), 1) // records 1, 5, 9
	for _, tt := range []struct {
		elapsed time.Duration
		want    int64
	}{
		{0, 0},
		{999 * time.Microsecond, 0},
		{time.Millisecond, 1},
		{4900 * time.Microsecond, 1},
		{5 * time.Millisecond, 2},
		{9 * time.Millisecond, 3},
		{time.Hour, 3},
	} {
		if got := s.dueBy(tt.elapsed); got != tt.want {
			t.Errorf("dueBy(%v) = %d, want %d", tt.elapsed, got, tt.want)
		}
	}
	// due and dueBy agree, whatever the rounding of odd rates.
	for _, rate := range []float64{20000, 7, 333.3, 99991} {
		for clients := 1; clients <= 5; clients++ {
			p := producePlan{records: 5000, perSecond: rate, clients: clients}
			for k := range clients {
				s := p.schedule(time.Unix(0, 0), k)
				for i := range s.num {
					at := s.due(i).Sub(s.start)
					if got := s.dueBy(at + time.Microsecond); got < i+1 {
						t.Fatalf("rate %v, client %d/%d: dueBy(due(%d)+1µs) = %d, want >= %d", rate, k, clients, i, got, i+1)
					}
					if got := s.dueBy(at - time.Microsecond); got > i {
						t.Fatalf("rate %v, client %d/%d: dueBy(due(%d)-1µs) = %d, want <= %d", rate, k, clients, i, got, i)
					}
				}
			}
		}
	}
}

func TestProduceResultCPU(t *testing.T) {
	r := produceResult{Records: 1_000_000, RecordSize: 1000}
	r.withCPU(cpuSample{server: 2500 * time.Millisecond, client: time.Second}, true)
	if *r.ServerCPUSeconds != 2.5 || *r.ServerCPUSPerGB != 2.5 || r.ClientCPUSeconds != 1 {
		t.Errorf("server %v s, %v s/GB, client %v s; want 2.5, 2.5 (1e9 bytes), 1", *r.ServerCPUSeconds, *r.ServerCPUSPerGB, r.ClientCPUSeconds)
	}
	fields := jsonFields(t, r)
	for _, f := range []string{"p9999_ms", "over_50ms", "warmup_seconds", "clients", "behind_ms_max",
		"client_cpu_seconds", "server_cpu_seconds", "server_cpu_s_per_gb"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("JSON lacks %s: %v", f, fields)
		}
	}

	// No records: no division by zero, and the JSON still encodes.
	r = produceResult{}
	r.withCPU(cpuSample{server: time.Second}, true)
	if *r.ServerCPUSPerGB != 0 {
		t.Errorf("s/GB without records = %v, want 0", *r.ServerCPUSPerGB)
	}
	jsonFields(t, r)

	// Without --server-pids the server fields are left out.
	r = produceResult{Records: 1}
	r.withCPU(cpuSample{server: time.Second}, false)
	if fields := jsonFields(t, r); fields["server_cpu_seconds"] != nil || fields["server_cpu_s_per_gb"] != nil {
		t.Errorf("server CPU reported without --server-pids: %v", fields)
	}
}

func jsonFields(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDoneUsesPreciseSendTime: franz-go truncates a record's Timestamp to
// the millisecond when Produce is called; the promise must measure from
// the untruncated send time, or a record sent just after the warm-up
// counts as a warm-up record (and every latency grows by up to 1 ms).
func TestDoneUsesPreciseSendTime(t *testing.T) {
	measureStart := time.Now().Truncate(time.Millisecond).Add(500 * time.Microsecond)
	b := newProducerBench(measureStart)
	br := b.records.Get().(*benchRecord)
	br.sent = measureStart.Add(100 * time.Microsecond)
	br.rec = kgo.Record{Context: br, Timestamp: br.sent.Truncate(time.Millisecond)} // as Produce leaves it
	b.done(&br.rec, nil)
	if res := b.result(1, time.Second); res.Records != 1 {
		t.Errorf("a record sent 100µs after the warm-up was measured %d times, want 1", res.Records)
	}
}
