package dataplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/controller"
	"github.com/skein-io/skein/internal/httpserver"
)

// series returns the value of the series of family name whose labels
// include want: a counter's or gauge's value, a histogram's sample count;
// ok is false when there is no such series.
func series(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return metricValue(m), true
		}
	}
	return 0, false
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

func mustSeries(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := series(t, reg, name, want)
	if !ok {
		t.Fatalf("no series %s%v", name, want)
	}
	return v
}

// waitSeries waits until the series' value satisfies ok.
func waitSeries(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string, what string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, found := series(t, reg, name, labels)
		if found && ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v: %v (found %v), want %s", name, labels, v, found, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requestsSent counts the requests a franz-go client wrote, by API key
// (a kgo.HookBrokerWrite).
type requestsSent struct {
	mu    sync.Mutex
	byKey map[int16]int
}

func (s *requestsSent) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey = map[int16]int{}
	}
	s.byKey[key]++
}

func (s *requestsSent) count(key int16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byKey[key]
}

// TestBrokerMetricsMove drives a broker with franz-go and checks that its
// metrics count what the client did: requests and their latency per API,
// bytes and records in and out of the topic, the partitions it leads, its
// log, and a group's committed offset and lag.
func TestBrokerMetricsMove(t *testing.T) {
	log := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: os.Stderr})
	ctl := startController(t, log)
	reg := prometheus.NewRegistry()
	cfg := validConfig(t.TempDir())
	cfg.Logger = log.Named("broker")
	cfg.Metrics = reg
	cfg.MetricsPerPartition = true
	cfg.Groups.OffsetsTopicNumPartitions = 1
	b := startBrokerWith(t, ctl, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var sent requestsSent
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerLinger(0), kgo.WithHooks(&sent))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if created, err := adm.CreateTopics(ctx, 1, 1, nil, "m"); err != nil || created.Error() != nil {
		t.Fatalf("create topic: %v %v", err, created.Error())
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "m", Value: []byte("warm-up")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	node := map[string]string{"node_id": "1"}
	produce := map[string]string{"node_id": "1", "api": "Produce"}
	topic := map[string]string{"node_id": "1", "topic": "m"}
	const n = 20
	value := []byte("0123456789")
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "m", Value: value}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	// The broker counts a request once its response is written: the
	// client may have read the last one a moment before.
	made := float64(sent.count(0))
	if made < n+1 {
		t.Fatalf("the client sent %v Produce requests for %d ProduceSync calls", made, n+1)
	}
	waitSeries(t, reg, "skein_requests_total", produce, fmt.Sprintf("%v, the Produce requests the client made", made),
		func(v float64) bool { return v == made })
	waitSeries(t, reg, "skein_request_duration_seconds", produce, fmt.Sprintf("%v latencies observed", made),
		func(v float64) bool { return v == made })
	metadata := map[string]string{"node_id": "1", "api": "Metadata"}
	waitSeries(t, reg, "skein_requests_total", metadata, "the Metadata requests the client made",
		func(v float64) bool { return v == float64(sent.count(3)) })
	if v := mustSeries(t, reg, "skein_topic_records_in_total", topic); v != n+1 {
		t.Fatalf("records in: %v, want %d", v, n+1)
	}
	if v := mustSeries(t, reg, "skein_topic_bytes_in_total", topic); v < float64(n*len(value)) {
		t.Fatalf("bytes in: %v, want at least %d", v, n*len(value))
	}

	if got := consumeAll(t, ctx, b.Addr(), "m", n+1); len(got) != n+1 {
		t.Fatalf("consumed %d", len(got))
	}
	if v := mustSeries(t, reg, "skein_topic_records_out_total", topic); v != n+1 {
		t.Fatalf("records out: %v, want %d", v, n+1)
	}
	if in, out := mustSeries(t, reg, "skein_topic_bytes_in_total", topic), mustSeries(t, reg, "skein_topic_bytes_out_total", topic); out != in {
		t.Fatalf("bytes out %v, bytes in %v: one consumer read everything once", out, in)
	}
	for _, name := range []string{
		"skein_broker_under_replicated_partitions", "skein_broker_under_min_isr_partitions",
		"skein_broker_offline_partitions", "skein_broker_preferred_leader_imbalance", "skein_broker_fenced",
	} {
		if v := mustSeries(t, reg, name, node); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
	if v := mustSeries(t, reg, "skein_broker_leader_partitions", node); v != 1 {
		t.Errorf("leader partitions: %v, want 1", v)
	}
	if v := mustSeries(t, reg, "skein_log_segments", topic); v != 1 {
		t.Errorf("log segments of m: %v, want 1", v)
	}
	size := mustSeries(t, reg, "skein_log_size_bytes", topic)
	if in := mustSeries(t, reg, "skein_topic_bytes_in_total", topic); size != in {
		t.Errorf("log size of m: %v, bytes in %v", size, in)
	}
	part := map[string]string{"node_id": "1", "topic": "m", "partition": "0"}
	if v := mustSeries(t, reg, "skein_partition_log_end_offset", part); v != n+1 {
		t.Errorf("partition log end offset: %v, want %d", v, n+1)
	}
	if v := mustSeries(t, reg, "skein_partition_high_watermark", part); v != n+1 {
		t.Errorf("partition high watermark: %v, want %d", v, n+1)
	}

	// A group's committed offset, and its lag against the high watermark.
	offsets := kadm.Offsets{}
	offsets.AddOffset("m", 0, 5, -1)
	if resp, err := adm.CommitOffsets(ctx, "readers", offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}
	group := map[string]string{"node_id": "1", "group": "readers", "topic": "m", "partition": "0"}
	if v := mustSeries(t, reg, "skein_group_committed_offset", group); v != 5 {
		t.Fatalf("committed offset: %v, want 5", v)
	}
	if v := mustSeries(t, reg, "skein_group_lag", group); v != n+1-5 {
		t.Fatalf("group lag: %v, want %d", v, n+1-5)
	}
	if v := mustSeries(t, reg, "skein_groups", map[string]string{"node_id": "1", "state": "Empty"}); v != 1 {
		t.Fatalf("Empty groups: %v, want 1", v)
	}
	if v := mustSeries(t, reg, "skein_broker_leader_partitions", node); v != 2 {
		t.Errorf("leader partitions: %v, want 2 (m and __consumer_offsets)", v)
	}

	// Closing unregisters everything: a broker of the same id may start
	// again on the same registry.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := series(t, reg, "skein_requests_total", produce); ok {
		t.Fatal("series left registered after Close")
	}
}

// TestBrokerReadyz: a broker is not ready before it registered with the
// controllers, and ready once registered, unfenced and caught up.
func TestBrokerReadyz(t *testing.T) {
	log := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: os.Stderr})
	// The controller's port, reserved: the broker starts first and
	// retries its registration until the controller listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctlAddr := ln.Addr().String()
	_ = ln.Close()

	cfg := validConfig(t.TempDir())
	cfg.Controllers = []string{ctlAddr}
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.Logger = log.Named("broker")
	b, err := NewBroker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	srv, err := httpserver.Start(httpserver.Config{Addr: "127.0.0.1:0", Checks: []httpserver.Check{{Name: "broker 1", Ready: b.Ready}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	readyz := func() (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL() + "readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || body != "not ready: broker 1: not started" {
		t.Fatalf("before Start: %d %q", code, body)
	}

	started := make(chan error, 1)
	go func() { started <- b.Start() }()
	// Start is retrying its registration: no controller listens yet.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := readyz()
		if code == http.StatusServiceUnavailable && body == "not ready: broker 1: not registered with the controllers yet" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("while registering: %d %q", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}

	ccfg := controller.DefaultConfig()
	ccfg.NodeID = 1000
	ccfg.DataDir = filepath.Join(t.TempDir(), "controller")
	ccfg.Listen = ctlAddr
	ccfg.RaftListen = "127.0.0.1:0"
	ccfg.InitialControllers = []controller.Voter{{ID: 1000, RaftAddr: "127.0.0.1:0"}}
	ccfg.RaftHeartbeatTimeout = 200 * time.Millisecond
	ccfg.Logger = log.Named("controller")
	ctl, err := controller.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := ctl.Ready(); ok || why != "starting" {
		t.Fatalf("controller before Start: ready %v, %q", ok, why)
	}
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close() })
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("broker start: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("broker did not start")
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, body := readyz()
		if code == http.StatusOK && body == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after registration: %d %q", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ok, why := ctl.Ready(); !ok {
		t.Fatalf("controller not ready: %s", why)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || body != "not ready: broker 1: shutting down" {
		t.Fatalf("after Close: %d %q", code, body)
	}
}

// TestControllerMetrics checks the controller's series after an election
// and a broker's registration.
func TestControllerMetrics(t *testing.T) {
	log := hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: os.Stderr})
	reg := prometheus.NewRegistry()
	cfg := controller.DefaultConfig()
	cfg.NodeID = 1000
	cfg.DataDir = filepath.Join(t.TempDir(), "controller")
	cfg.Listen = "127.0.0.1:0"
	cfg.RaftListen = "127.0.0.1:0"
	cfg.InitialControllers = []controller.Voter{{ID: 1000, RaftAddr: "127.0.0.1:0"}}
	cfg.RaftHeartbeatTimeout = 200 * time.Millisecond
	cfg.Logger = log
	cfg.Metrics = reg
	ctl, err := controller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctl.Close() })
	startBroker(t, log, ctl, t.TempDir())

	node := map[string]string{"node_id": "1000"}
	waitSeries(t, reg, "skein_controller_active", node, "1", func(v float64) bool { return v == 1 })
	if v := mustSeries(t, reg, "skein_controller_raft_state", map[string]string{"node_id": "1000", "state": "leader"}); v != 1 {
		t.Fatalf("raft state leader: %v", v)
	}
	waitSeries(t, reg, "skein_controller_registered_brokers", node, "1", func(v float64) bool { return v == 1 })
	waitSeries(t, reg, "skein_controller_fenced_brokers", node, "0", func(v float64) bool { return v == 0 })
	if v := mustSeries(t, reg, "skein_controller_metadata_offset", node); v < 1 {
		t.Fatalf("metadata offset: %v", v)
	}
	if v := mustSeries(t, reg, "skein_controller_raft_term", node); v < 1 {
		t.Fatalf("raft term: %v", v)
	}
	// The broker's heartbeats and metadata polls are requests too.
	waitSeries(t, reg, "skein_requests_total", map[string]string{"node_id": "1000", "api": "BrokerHeartbeat"}, "> 0",
		func(v float64) bool { return v > 0 })
	if v := mustSeries(t, reg, "skein_request_duration_seconds", map[string]string{"node_id": "1000", "api": "BrokerRegistration"}); v < 1 {
		t.Fatalf("BrokerRegistration latencies: %v", v)
	}
}
