package dataplane

// The broker's metrics beyond the request metrics (internal/metrics): a
// prometheus.Collector that reads the broker's state when Prometheus
// scrapes. Nothing here runs on the request path: the handlers and
// partitions only bump atomic counters they hold (partition.Traffic,
// Handlers.Purgatory, the fetchers' lag), and every count that needs a
// scan (under-replicated partitions, log sizes, group lag) is computed
// here, from state the broker keeps anyway.

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/dataplane/group"
	"github.com/skein-io/skein/dataplane/kafka"
	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/dataplane/replica"
	"github.com/skein-io/skein/internal/metrics"
	"github.com/skein-io/skein/internal/security"
)

// endOffsetsTimeout bounds the ListOffsets a scrape sends for the group
// lag of partitions led by other brokers.
const endOffsetsTimeout = 3 * time.Second

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "", name), help, labels, nil)
}

// Every series the broker collector emits.
var (
	descPartitions = desc("broker_partitions",
		"Partition replicas hosted on this broker.")
	descLeaders = desc("broker_leader_partitions",
		"Partitions this broker leads.")
	descUnderReplicated = desc("broker_under_replicated_partitions",
		"Partitions led here whose ISR is smaller than their replica set (replicas being added by a reassignment not counted).")
	descUnderMinISR = desc("broker_under_min_isr_partitions",
		"Partitions led here whose ISR is smaller than min.insync.replicas (acks=all produces are refused).")
	descOffline = desc("broker_offline_partitions",
		"Partitions with a replica here and no leader.")
	descImbalance = desc("broker_preferred_leader_imbalance",
		"Partitions whose preferred leader (first replica) is this broker but which another broker leads, or none; summed over brokers, the cluster's imbalance.")
	descISRShrinks = desc("broker_isr_shrinks_total",
		"ISR shrinks of partitions led here (a replica left the ISR).")
	descISRExpands = desc("broker_isr_expands_total",
		"ISR expansions of partitions led here (a replica joined the ISR).")
	descPurgatory = desc("broker_purgatory_size",
		"Requests waiting in purgatory: acks=all produces waiting for the ISR, fetches waiting for data.", "operation")
	descMetadataOffset = desc("broker_metadata_offset",
		"Offset (Raft index) of the last metadata record this broker applied.")
	descFenced = desc("broker_fenced",
		"1 while the controller reports this broker fenced.")
	descFetcherLag = desc("replica_fetcher_max_lag",
		"Largest lag, in records behind the leader's high watermark, of the partitions this broker follows from a leader.", "leader")
	descFetcherPartitions = desc("replica_fetcher_partitions",
		"Partitions this broker follows from a leader.", "leader")

	descBytesIn = desc("topic_bytes_in_total",
		"Bytes produced to the topic's partitions led here.", "topic")
	descRecordsIn = desc("topic_records_in_total",
		"Records produced to the topic's partitions led here.", "topic")
	descBytesOut = desc("topic_bytes_out_total",
		"Bytes of the topic fetched by consumers from this broker.", "topic")
	descRecordsOut = desc("topic_records_out_total",
		"Records (offsets) of the topic fetched by consumers from this broker.", "topic")
	descReplBytesIn = desc("topic_replication_bytes_in_total",
		"Bytes of the topic this broker copied from leaders as a follower.", "topic")
	descReplBytesOut = desc("topic_replication_bytes_out_total",
		"Bytes of the topic fetched from this broker by followers.", "topic")
	descLogSize = desc("log_size_bytes",
		"Size of the topic's log segment files on this broker (all its replicas here).", "topic")
	descLogSegments = desc("log_segments",
		"Log segments of the topic on this broker (all its replicas here).", "topic")

	descPartSize = desc("partition_log_size_bytes",
		"Size of a replica's log segment files (with MetricsPerPartition).", "topic", "partition")
	descPartSegments = desc("partition_log_segments",
		"Log segments of a replica (with MetricsPerPartition).", "topic", "partition")
	descPartStart = desc("partition_log_start_offset",
		"A replica's log start offset (with MetricsPerPartition).", "topic", "partition")
	descPartEnd = desc("partition_log_end_offset",
		"A replica's log end offset (with MetricsPerPartition).", "topic", "partition")
	descPartHW = desc("partition_high_watermark",
		"A replica's high watermark (with MetricsPerPartition).", "topic", "partition")
	descPartURP = desc("partition_under_replicated",
		"1 when this broker leads the partition and its ISR lacks a replica (with MetricsPerPartition).", "topic", "partition")

	descGroups = desc("groups",
		"Consumer groups coordinated by this broker, by state.", "state")
	descRebalances = desc("group_rebalances_total",
		"Group rebalances completed on this broker (each a new generation).")
	descGroupMembers = desc("group_members",
		"Members of a group coordinated by this broker.", "group")
	descCommitted = desc("group_committed_offset",
		"A group's committed offset of a partition (on the group's coordinator).", "group", "topic", "partition")
	descGroupLag = desc("group_lag",
		"A group's lag on a partition: its high watermark minus the committed offset (on the group's coordinator).", "group", "topic", "partition")
)

// groupStates are the states skein_groups always reports (0 when none).
var groupStates = []string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

// brokerCollector collects the broker's state.
type brokerCollector struct {
	nodeID       int32
	perPartition bool
	partitions   *partition.Manager
	replicas     *replica.Manager
	groups       *group.Coordinator
	handlers     *kafka.Handlers
	// metadata returns the applied metadata offset and whether the
	// controller reports this broker fenced.
	metadata func() (offset uint64, fenced bool)
	// endOffsets lists end offsets for the group lag (endOffsetsClient).
	endOffsets *endOffsetsClient
}

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descPartitions, descLeaders, descUnderReplicated, descUnderMinISR, descOffline, descImbalance,
		descISRShrinks, descISRExpands, descPurgatory, descMetadataOffset, descFenced, descFetcherLag, descFetcherPartitions,
		descBytesIn, descRecordsIn, descBytesOut, descRecordsOut, descReplBytesIn, descReplBytesOut, descLogSize, descLogSegments,
		descPartSize, descPartSegments, descPartStart, descPartEnd, descPartHW, descPartURP,
		descGroups, descRebalances, descGroupMembers, descCommitted, descGroupLag,
	} {
		ch <- d
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectReplicas(ch)
	c.collectTopics(ch)
	shrinks, expands := c.partitions.ISRChanges()
	ch <- counter(descISRShrinks, float64(shrinks))
	ch <- counter(descISRExpands, float64(expands))
	produce, fetch := c.handlers.Purgatory()
	ch <- gauge(descPurgatory, float64(produce), "produce")
	ch <- gauge(descPurgatory, float64(fetch), "fetch")
	offset, fenced := c.metadata()
	ch <- gauge(descMetadataOffset, float64(offset))
	ch <- gauge(descFenced, boolValue(fenced))
	for _, f := range c.replicas.Fetchers() {
		leader := strconv.Itoa(int(f.Leader))
		ch <- gauge(descFetcherLag, float64(f.MaxLag), leader)
		ch <- gauge(descFetcherPartitions, float64(f.Partitions), leader)
	}
	c.collectGroups(ch)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// logTotals are a topic's log files on this broker.
type logTotals struct {
	size     int64
	segments int
}

func (c *brokerCollector) collectReplicas(ch chan<- prometheus.Metric) {
	var hosted, leaders, urp, underMin, offline, imbalance int
	logs := map[string]*logTotals{}
	c.partitions.EachReplica(func(s partition.Stats) {
		hosted++
		if s.Role == partition.RoleLeader {
			leaders++
		}
		if s.UnderReplicated() {
			urp++
		}
		if s.UnderMinISR() {
			underMin++
		}
		if s.Leader < 0 {
			offline++
		}
		if s.PreferredLeader == c.nodeID && s.Leader != c.nodeID {
			imbalance++
		}
		t := logs[s.Topic]
		if t == nil {
			t = &logTotals{}
			logs[s.Topic] = t
		}
		t.size += s.SizeBytes
		t.segments += s.Segments
		if c.perPartition {
			p := strconv.Itoa(int(s.Partition))
			ch <- gauge(descPartSize, float64(s.SizeBytes), s.Topic, p)
			ch <- gauge(descPartSegments, float64(s.Segments), s.Topic, p)
			ch <- gauge(descPartStart, float64(s.LogStartOffset), s.Topic, p)
			ch <- gauge(descPartEnd, float64(s.LogEndOffset), s.Topic, p)
			ch <- gauge(descPartHW, float64(s.HighWatermark), s.Topic, p)
			ch <- gauge(descPartURP, boolValue(s.UnderReplicated()), s.Topic, p)
		}
	})
	ch <- gauge(descPartitions, float64(hosted))
	ch <- gauge(descLeaders, float64(leaders))
	ch <- gauge(descUnderReplicated, float64(urp))
	ch <- gauge(descUnderMinISR, float64(underMin))
	ch <- gauge(descOffline, float64(offline))
	ch <- gauge(descImbalance, float64(imbalance))
	for topic, t := range logs {
		ch <- gauge(descLogSize, float64(t.size), topic)
		ch <- gauge(descLogSegments, float64(t.segments), topic)
	}
}

func (c *brokerCollector) collectTopics(ch chan<- prometheus.Metric) {
	c.partitions.EachTopic(func(topic string, t *partition.Traffic, hosted int) {
		in, recIn := t.BytesIn.Load(), t.RecordsIn.Load()
		out, recOut := t.BytesOut.Load(), t.RecordsOut.Load()
		replIn, replOut := t.ReplicationBytesIn.Load(), t.ReplicationBytesOut.Load()
		if hosted == 0 && in == 0 && out == 0 && replIn == 0 && replOut == 0 {
			return // a topic with nothing here: no series
		}
		ch <- counter(descBytesIn, float64(in), topic)
		ch <- counter(descRecordsIn, float64(recIn), topic)
		ch <- counter(descBytesOut, float64(out), topic)
		ch <- counter(descRecordsOut, float64(recOut), topic)
		ch <- counter(descReplBytesIn, float64(replIn), topic)
		ch <- counter(descReplBytesOut, float64(replOut), topic)
	})
}

// topicPartition names a partition in the group lag.
type topicPartition struct {
	topic     string
	partition int32
}

func (c *brokerCollector) collectGroups(ch chan<- prometheus.Metric) {
	ch <- counter(descRebalances, float64(c.groups.Rebalances()))
	stats := c.groups.Stats()
	byState := map[string]int{}
	ends := map[topicPartition]int64{}
	var remote []string // topics with a committed partition led elsewhere
	seenRemote := map[string]bool{}
	for _, g := range stats {
		byState[g.State]++
		ch <- gauge(descGroupMembers, float64(g.Members), g.Group)
		for _, o := range g.Offsets {
			tp := topicPartition{o.Topic, o.Partition}
			if _, ok := ends[tp]; ok {
				continue
			}
			if p := c.partitions.Get(o.Topic, o.Partition); p != nil && p.State().Role == partition.RoleLeader {
				ends[tp] = p.HighWatermark()
			} else if !seenRemote[o.Topic] {
				seenRemote[o.Topic] = true
				remote = append(remote, o.Topic)
			}
		}
	}
	for _, s := range groupStates {
		ch <- gauge(descGroups, float64(byState[s]), s)
	}
	if len(remote) > 0 && c.endOffsets != nil {
		c.endOffsets.list(remote, ends)
	}
	for _, g := range stats {
		for _, o := range g.Offsets {
			p := strconv.Itoa(int(o.Partition))
			ch <- gauge(descCommitted, float64(o.Offset), g.Group, o.Topic, p)
			if end, ok := ends[topicPartition{o.Topic, o.Partition}]; ok {
				ch <- gauge(descGroupLag, float64(max(end-o.Offset, 0)), g.Group, o.Topic, p)
			}
		}
	}
}

// endOffsetsClient asks the cluster for end offsets (high watermarks) of
// partitions led by other brokers, through a franz-go client of this
// broker's own listener, created on first use.
type endOffsetsClient struct {
	addr func() string
	// dial, when set, connects instead of plain TCP (TLS listeners).
	dial security.Dialer

	mu struct {
		sync.Mutex
		adm    *kadm.Client
		closed bool
	}
}

// list adds the end offsets of topics' partitions to ends, for those not
// already there; a partition whose leader does not answer in time is left
// out (no lag series for it this scrape).
func (e *endOffsetsClient) list(topics []string, ends map[topicPartition]int64) {
	adm := e.admin()
	if adm == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), endOffsetsTimeout)
	defer cancel()
	listed, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil && len(listed) == 0 {
		return
	}
	listed.Each(func(o kadm.ListedOffset) {
		tp := topicPartition{o.Topic, o.Partition}
		if _, ok := ends[tp]; !ok && o.Err == nil {
			ends[tp] = o.Offset
		}
	})
}

func (e *endOffsetsClient) admin() *kadm.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.closed {
		return nil
	}
	if e.mu.adm == nil {
		addr := e.addr()
		if addr == "" {
			return nil
		}
		opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ClientID("skein-metrics")}
		if e.dial != nil {
			opts = append(opts, kgo.Dialer(e.dial))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return nil
		}
		e.mu.adm = kadm.NewClient(cl)
	}
	return e.mu.adm
}

func (e *endOffsetsClient) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mu.closed = true
	if e.mu.adm != nil {
		e.mu.adm.Close()
		e.mu.adm = nil
	}
}
