package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/test/harness"
)

// TestClients runs two more Kafka client libraries our users run against
// one 3-broker cluster: IBM/sarama (idempotent SyncProducer, ConsumerGroup,
// ClusterAdmin, DeleteRecords included; with protocol version 3.6, with sarama's default 2.8, and
// with its newest version plus zstd and the cooperative-sticky assignor)
// and segmentio/kafka-go (Writer uncompressed and lz4, group Readers with
// synchronous commits, Conn.ReadPartitions). Each subtest produces
// numbered records with acks=all to a 4-partition, RF 3 topic, reads them
// with a two-member consumer group, and checks that every acknowledged
// record was received intact at its acknowledged offset, that the log
// holds exactly the records produced, and that the group's committed
// offsets reach the end of every partition, before and after the members
// leave.
func TestClients(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{Brokers: 3, BrokerArgs: groupBrokerArgs})

	t.Run("Sarama/V3_6_0_0", func(t *testing.T) {
		testSarama(t, c, "sarama-v36", func(cfg *sarama.Config) {
			cfg.Version = sarama.V3_6_0_0
		})
	})
	t.Run("Sarama/DefaultVersion", func(t *testing.T) {
		testSarama(t, c, "sarama-default", func(cfg *sarama.Config) {
			cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
		})
	})
	t.Run("Sarama/MaxVersion-zstd-cooperative", func(t *testing.T) {
		testSarama(t, c, "sarama-max", func(cfg *sarama.Config) {
			cfg.Version = sarama.MaxVersion
			cfg.Producer.Compression = sarama.CompressionZSTD
			cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
		})
	})
	t.Run("Sarama/AlterConfig", func(t *testing.T) {
		testSaramaAlterConfig(t, c)
	})
	t.Run("KafkaGo/uncompressed", func(t *testing.T) {
		testKafkaGo(t, c, "kafka-go", 0)
	})
	t.Run("KafkaGo/lz4", func(t *testing.T) {
		testKafkaGo(t, c, "kafka-go-lz4", kafkago.Lz4)
	})
}

const (
	clientRecords    = 5000
	clientPartitions = 4
	clientRF         = 3
)

// createClientTopic creates topic (clientPartitions, RF clientRF) and waits
// until every broker's Metadata lists it with a leader for every partition:
// the clients under test ask any broker. (Each broker is asked directly:
// kadm's ListTopics caches an UNKNOWN_TOPIC_OR_PARTITION answer from a
// broker that has not applied the new topic yet for MetadataMinAge, 5 s.)
func createClientTopic(t *testing.T, c *harness.Cluster, adm *kadm.Client, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, clientPartitions, clientRF, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, err, resp.ErrMessage)
	}
	cl := c.Client(t)
	for _, b := range c.Brokers {
		harness.WaitFor(t, 30*time.Second, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(topic)
			req.Topics = append(req.Topics, rt)
			kresp, err := cl.Broker(int(b.ID)).Request(ctx, req)
			if err != nil {
				return false, fmt.Sprintf("metadata from broker %d: %v", b.ID, err)
			}
			mresp := kresp.(*kmsg.MetadataResponse)
			if len(mresp.Topics) != 1 {
				return false, fmt.Sprintf("broker %d: %d topics in metadata", b.ID, len(mresp.Topics))
			}
			mt := mresp.Topics[0]
			if err := kerr.ErrorForCode(mt.ErrorCode); err != nil || len(mt.Partitions) != clientPartitions {
				return false, fmt.Sprintf("broker %d: %s: %v, %d partitions", b.ID, topic, err, len(mt.Partitions))
			}
			for _, p := range mt.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil || p.Leader < 0 {
					return false, fmt.Sprintf("broker %d: %s/%d: leader %d, %v", b.ID, topic, p.Partition, p.Leader, err)
				}
			}
			return true, ""
		})
	}
}

// partOff names one record: partition and offset.
type partOff struct {
	Partition int32
	Offset    int64
}

// received collects what the members of a consumer group read.
type received struct {
	mu       sync.Mutex
	values   map[partOff]string // first value read at each offset
	mismatch []string           // offsets read twice with different values
	byMember map[int]int        // records read per member
	errs     []string           // client errors
}

func newReceived() *received {
	return &received{values: make(map[partOff]string), byMember: make(map[int]int)}
}

func (r *received) add(member int, part int32, off int64, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := partOff{part, off}
	if v, ok := r.values[k]; ok && v != value {
		r.mismatch = append(r.mismatch, fmt.Sprintf("%d/%d: %q then %q", part, off, v, value))
	} else if !ok {
		r.values[k] = value
	}
	r.byMember[member]++
}

func (r *received) addErr(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// missing returns how many of acks were not read yet, and one of them.
func (r *received) missing(acks map[partOff]string) (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, example := 0, ""
	for k := range acks {
		if _, ok := r.values[k]; !ok {
			n++
			if example == "" {
				example = fmt.Sprintf("%d/%d", k.Partition, k.Offset)
			}
		}
	}
	return n, example
}

// check fails t unless every acknowledged record was read with its value,
// and reports duplicates read and per-member counts.
func (r *received) check(t *testing.T, acks map[partOff]string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := 0
	for k, want := range acks {
		if got := r.values[k]; got != want {
			if bad < 5 {
				t.Errorf("record %d/%d: read %q, acknowledged %q", k.Partition, k.Offset, got, want)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d acknowledged records not read intact", bad, len(acks))
	}
	for k := range r.values {
		if _, ok := acks[k]; !ok {
			t.Errorf("read %d/%d (%q), which was never acknowledged", k.Partition, k.Offset, r.values[k])
			break
		}
	}
	if len(r.mismatch) > 0 {
		t.Errorf("offsets read twice with different values: %v", r.mismatch)
	}
	total := 0
	for _, n := range r.byMember {
		total += n
	}
	t.Logf("read %d records (%d distinct) per member %v; client errors: %d %v",
		total, len(r.values), r.byMember, len(r.errs), firstN(r.errs, 3))
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// checkAcks fails t unless acks has n records with distinct offsets, spread
// over the topic's partitions, and numbered values 0..n-1 of stream.
func checkAcks(t *testing.T, acks map[partOff]string, stream string, n int) {
	t.Helper()
	if len(acks) != n {
		t.Fatalf("%d distinct partition/offset acknowledgements, want %d", len(acks), n)
	}
	seqs := make(map[int64]bool, n)
	parts := make(map[int32]bool)
	for k, v := range acks {
		s, seq, ok := harness.ParseValue(v)
		if !ok || s != stream {
			t.Fatalf("acknowledged value %q is not of stream %s", v, stream)
		}
		seqs[seq] = true
		parts[k.Partition] = true
	}
	if len(seqs) != n {
		t.Fatalf("%d distinct values acknowledged, want %d", len(seqs), n)
	}
	if len(parts) != clientPartitions {
		t.Errorf("records acknowledged on %d partitions, want %d", len(parts), clientPartitions)
	}
}

// checkLogEnds fails t unless the topic's end offsets add up to n and the
// acknowledged offsets of every partition are exactly 0..end-1.
func checkLogEnds(t *testing.T, adm *kadm.Client, topic string, acks map[partOff]string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	perPart := make(map[int32]int64)
	for k := range acks {
		perPart[k.Partition]++
	}
	var sum int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("end offset of %s/%d: %v", topic, o.Partition, o.Err)
			return
		}
		sum += o.Offset
		if perPart[o.Partition] != o.Offset {
			t.Errorf("%s/%d ends at %d but %d records were acknowledged there", topic, o.Partition, o.Offset, perPart[o.Partition])
		}
	})
	if sum != int64(n) {
		t.Errorf("%s holds %d records, want %d (exactly the records produced)", topic, sum, n)
	}
}

// ---- IBM/sarama ----------------------------------------------------------

// saramaMember is one sarama ConsumerGroup member: its handler records
// what it reads and the partitions its current session claims.
type saramaMember struct {
	id    int
	topic string
	recv  *received

	mu     sync.Mutex
	claims []int32 // of the current session; nil between sessions
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.claims = append([]int32(nil), s.Claims()[m.topic]...)
	m.mu.Unlock()
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.claims = nil
	m.mu.Unlock()
	return nil
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			m.recv.add(m.id, msg.Partition, msg.Offset, string(msg.Value))
			s.MarkMessage(msg, "")
		case <-s.Context().Done():
			return nil
		}
	}
}

func (m *saramaMember) currentClaims() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int32(nil), m.claims...)
}

// saramaConfig returns sarama's default configuration with tweak applied.
func saramaConfig(clientID string, tweak func(*sarama.Config)) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	tweak(cfg)
	return cfg
}

func testSarama(t *testing.T, c *harness.Cluster, name string, tweak func(*sarama.Config)) {
	topic, group := name, name+"-group"
	addrs := strings.Split(c.Bootstrap(), ",")
	adm := c.Admin(t)
	createClientTopic(t, c, adm, topic)

	// Two group members, started before anything is produced.
	ccfg := saramaConfig(name+"-consumer", tweak)
	ccfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	ccfg.Consumer.Offsets.AutoCommit.Enable = true
	ccfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	ccfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	ccfg.Consumer.Return.Errors = true
	t.Logf("sarama protocol version %s, assignor %s, compression %s", ccfg.Version, ccfg.Consumer.Group.Rebalance.GroupStrategies[0].Name(), ccfg.Producer.Compression)

	recv := newReceived()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var members []*saramaMember
	var groups []sarama.ConsumerGroup
	closeGroups := func() {
		cancel()
		for _, g := range groups {
			if err := g.Close(); err != nil {
				t.Errorf("close sarama consumer group: %v", err)
			}
		}
		groups = nil
		wg.Wait()
	}
	defer closeGroups()
	for i := range 2 {
		cg, err := sarama.NewConsumerGroup(addrs, group, ccfg)
		if err != nil {
			t.Fatalf("sarama consumer group: %v", err)
		}
		groups = append(groups, cg)
		m := &saramaMember{id: i, topic: topic, recv: recv}
		members = append(members, m)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for err := range cg.Errors() {
				recv.addErr("member %d: %v", m.id, err)
			}
		}()
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, m); err != nil {
					if errors.Is(err, sarama.ErrClosedConsumerGroup) {
						return
					}
					recv.addErr("member %d: consume: %v", m.id, err)
				}
			}
		}()
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		owned := make(map[int32]int)
		var desc []string
		for _, m := range members {
			cl := m.currentClaims()
			desc = append(desc, fmt.Sprintf("member %d claims %v", m.id, cl))
			if len(cl) == 0 {
				return false, strings.Join(desc, "; ")
			}
			for _, p := range cl {
				owned[p]++
			}
		}
		if len(owned) != clientPartitions {
			return false, strings.Join(desc, "; ")
		}
		for p, n := range owned {
			if n != 1 {
				return false, fmt.Sprintf("partition %d claimed by %d members: %s", p, n, strings.Join(desc, "; "))
			}
		}
		return true, ""
	})

	// Produce with a SyncProducer: acks=all, idempotent, one request in flight.
	pcfg := saramaConfig(name+"-producer", tweak)
	pcfg.Producer.RequiredAcks = sarama.WaitForAll
	pcfg.Producer.Idempotent = true
	pcfg.Producer.Return.Successes = true
	pcfg.Producer.Retry.Backoff = 100 * time.Millisecond
	pcfg.Net.MaxOpenRequests = 1
	producer, err := sarama.NewSyncProducer(addrs, pcfg)
	if err != nil {
		t.Fatalf("sarama sync producer: %v", err)
	}
	acks := make(map[partOff]string, clientRecords)
	start := time.Now()
	const chunk = 500
	for base := 0; base < clientRecords; base += chunk {
		msgs := make([]*sarama.ProducerMessage, 0, chunk)
		for i := base; i < base+chunk && i < clientRecords; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(harness.Value(name, int64(i)))})
		}
		if err := producer.SendMessages(msgs); err != nil {
			var perrs sarama.ProducerErrors
			if errors.As(err, &perrs) && len(perrs) > 0 {
				t.Fatalf("sarama SendMessages: %d failed, first: %v", len(perrs), perrs[0].Err)
			}
			t.Fatalf("sarama SendMessages: %v", err)
		}
		for _, m := range msgs {
			v, _ := m.Value.Encode()
			acks[partOff{m.Partition, m.Offset}] = string(v)
		}
	}
	if err := producer.Close(); err != nil {
		t.Errorf("close sarama producer: %v", err)
	}
	t.Logf("sarama produced %d records in %v", clientRecords, time.Since(start).Round(time.Millisecond))
	checkAcks(t, acks, name, clientRecords)
	checkLogEnds(t, adm, topic, acks, clientRecords)

	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		n, ex := recv.missing(acks)
		return n == 0, fmt.Sprintf("%d acknowledged records not read yet (e.g. %s)", n, ex)
	})
	recv.check(t, acks)
	waitCommittedAtEnd(t, adm, group, topic, clientPartitions, 30*time.Second)

	// ClusterAdmin, while the group is running.
	acfg := saramaConfig(name+"-admin", tweak)
	admin, err := sarama.NewClusterAdmin(addrs, acfg)
	if err != nil {
		t.Fatalf("sarama cluster admin: %v", err)
	}
	defer admin.Close()
	checkSaramaTopics(t, admin, topic)
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		return saramaGroupIs(admin, group, topic, "Stable", 2)
	})
	groupsListed, err := admin.ListConsumerGroups()
	if err != nil {
		t.Fatalf("sarama ListConsumerGroups: %v", err)
	}
	if pt, ok := groupsListed[group]; !ok || pt != "consumer" {
		t.Errorf("ListConsumerGroups: %s has protocol type %q (listed: %v), want consumer", group, pt, ok)
	}
	off, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3}})
	if err != nil {
		t.Fatalf("sarama ListConsumerGroupOffsets: %v", err)
	}
	var committed int64
	for p := range int32(clientPartitions) {
		b := off.GetBlock(topic, p)
		if b == nil || b.Err != sarama.ErrNoError {
			t.Errorf("ListConsumerGroupOffsets %s/%d: %+v", topic, p, b)
			continue
		}
		committed += b.Offset
	}
	if committed != clientRecords {
		t.Errorf("ListConsumerGroupOffsets: committed offsets add up to %d, want %d", committed, clientRecords)
	}

	// Members leave: the group is empty, its offsets stay.
	closeStart := time.Now()
	closeGroups()
	t.Logf("sarama consumer groups closed in %v", time.Since(closeStart).Round(time.Millisecond))
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		return saramaGroupIs(admin, group, topic, "Empty", 0)
	})
	waitCommittedAtEnd(t, adm, group, topic, clientPartitions, 5*time.Second)

	// ClusterAdmin.DeleteRecords (DeleteRecords v1 or v2 with the
	// configured version): partition 0 then starts at 1.
	if err := admin.DeleteRecords(topic, map[int32]int64{0: 1}); err != nil {
		t.Fatalf("sarama DeleteRecords: %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	starts, err := adm.ListStartOffsets(dctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if o, ok := starts.Lookup(topic, 0); err != nil || !ok || o.Offset != 1 {
		t.Errorf("after sarama DeleteRecords: %s/0 starts at %d (%v), want 1", topic, o.Offset, err)
	}
}

// checkSaramaTopics checks ClusterAdmin.ListTopics and DescribeTopics.
func checkSaramaTopics(t *testing.T, admin sarama.ClusterAdmin, topic string) {
	t.Helper()
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatalf("sarama ListTopics: %v", err)
	}
	d, ok := topics[topic]
	if !ok {
		t.Fatalf("sarama ListTopics: %s not listed (%d topics)", topic, len(topics))
	}
	if d.NumPartitions != clientPartitions || d.ReplicationFactor != clientRF {
		t.Errorf("sarama ListTopics: %s has %d partitions, RF %d; want %d, %d", topic, d.NumPartitions, d.ReplicationFactor, clientPartitions, clientRF)
	}
	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("sarama DescribeTopics: %v", err)
	}
	if len(md) != 1 || md[0].Name != topic || md[0].Err != sarama.ErrNoError {
		t.Fatalf("sarama DescribeTopics(%s): %+v", topic, md)
	}
	if md[0].IsInternal {
		t.Errorf("sarama DescribeTopics: %s is internal", topic)
	}
	if len(md[0].Partitions) != clientPartitions {
		t.Errorf("sarama DescribeTopics: %d partitions, want %d", len(md[0].Partitions), clientPartitions)
	}
	for _, p := range md[0].Partitions {
		if p.Err != sarama.ErrNoError || p.Leader < 0 || len(p.Replicas) != clientRF || len(p.Isr) == 0 {
			t.Errorf("sarama DescribeTopics: partition %d: err %v leader %d replicas %v isr %v", p.ID, p.Err, p.Leader, p.Replicas, p.Isr)
		}
	}
}

// saramaGroupIs reports whether DescribeConsumerGroups shows group in state
// with members members whose assignments cover every partition of topic
// exactly once.
func saramaGroupIs(admin sarama.ClusterAdmin, group, topic, state string, members int) (bool, string) {
	ds, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return false, "DescribeConsumerGroups: " + err.Error()
	}
	if len(ds) != 1 || ds[0].GroupId != group {
		return false, fmt.Sprintf("DescribeConsumerGroups(%s): %d groups", group, len(ds))
	}
	d := ds[0]
	if d.Err != sarama.ErrNoError || d.State != state || len(d.Members) != members {
		return false, fmt.Sprintf("group %s: err %v state %q protocol %q/%q, %d members; want %s with %d",
			group, d.Err, d.State, d.ProtocolType, d.Protocol, len(d.Members), state, members)
	}
	if members == 0 {
		return true, ""
	}
	if d.ProtocolType != "consumer" || d.Protocol == "" {
		return false, fmt.Sprintf("group %s: protocol %q/%q", group, d.ProtocolType, d.Protocol)
	}
	owned := make(map[int32]int)
	for id, m := range d.Members {
		a, err := m.GetMemberAssignment()
		if err != nil {
			return false, fmt.Sprintf("member %s assignment: %v", id, err)
		}
		if a == nil || len(a.Topics[topic]) == 0 {
			return false, fmt.Sprintf("member %s (%s) has no partitions of %s", id, m.ClientId, topic)
		}
		for _, p := range a.Topics[topic] {
			owned[p]++
		}
		if _, err := m.GetMemberMetadata(); err != nil {
			return false, fmt.Sprintf("member %s metadata: %v", id, err)
		}
	}
	for p := range int32(clientPartitions) {
		if owned[p] != 1 {
			return false, fmt.Sprintf("partition %d assigned %d times: %v", p, owned[p], owned)
		}
	}
	return true, ""
}

// ---- segmentio/kafka-go --------------------------------------------------

func testKafkaGo(t *testing.T, c *harness.Cluster, name string, compression kafkago.Compression) {
	topic, group := name, name+"-group"
	addrs := strings.Split(c.Bootstrap(), ",")
	adm := c.Admin(t)
	createClientTopic(t, c, adm, topic)

	// Conn: ReadPartitions lists the topic's partitions.
	conn, err := kafkago.Dial("tcp", addrs[0])
	if err != nil {
		t.Fatalf("kafka-go dial %s: %v", addrs[0], err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		t.Fatalf("kafka-go ReadPartitions(%s): %v", topic, err)
	}
	if len(parts) != clientPartitions {
		t.Errorf("kafka-go ReadPartitions: %d partitions, want %d: %+v", len(parts), clientPartitions, parts)
	}
	for _, p := range parts {
		if p.Topic != topic || p.Leader.Port == 0 || len(p.Replicas) != clientRF || len(p.Isr) == 0 {
			t.Errorf("kafka-go ReadPartitions: partition %+v", p)
		}
		if _, ok := brokerAddr(addrs, p.Leader); !ok {
			t.Errorf("kafka-go ReadPartitions: partition %d leader %s:%d is not one of %v", p.ID, p.Leader.Host, p.Leader.Port, addrs)
		}
	}

	// Two group Readers, started before anything is written; they fetch,
	// and commit each record synchronously (CommitInterval 0).
	recv := newReceived()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var readers []*kafkago.Reader
	closeReaders := func() {
		cancel()
		for _, r := range readers {
			if err := r.Close(); err != nil {
				t.Errorf("close kafka-go reader: %v", err)
			}
		}
		readers = nil
		wg.Wait()
	}
	defer closeReaders()
	for i := range 2 {
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers:           addrs,
			GroupID:           group,
			Topic:             topic,
			StartOffset:       kafkago.FirstOffset,
			CommitInterval:    0,
			HeartbeatInterval: 500 * time.Millisecond,
			SessionTimeout:    10 * time.Second,
			RebalanceTimeout:  10 * time.Second,
			JoinGroupBackoff:  200 * time.Millisecond,
			MaxWait:           200 * time.Millisecond,
			ReadBackoffMin:    50 * time.Millisecond,
			ReadBackoffMax:    200 * time.Millisecond,
			ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
				recv.addErr("reader %d: "+format, append([]any{i}, args...)...)
			}),
		})
		readers = append(readers, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						recv.addErr("reader %d: fetch: %v", i, err)
					}
					return
				}
				recv.add(i, int32(m.Partition), m.Offset, string(m.Value))
				if err := r.CommitMessages(ctx, m); err != nil && ctx.Err() == nil {
					recv.addErr("reader %d: commit %d/%d: %v", i, m.Partition, m.Offset, err)
				}
			}
		}()
	}
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		return kadmGroupIs(adm, group, topic, "Stable", 2)
	})

	// Writer: acks=all; Completion records each record's partition/offset.
	var ackMu sync.Mutex
	acks := make(map[partOff]string, clientRecords)
	var completionErrs []error
	w := &kafkago.Writer{
		// A Transport of its own: kafka-go's DefaultTransport caches the
		// cluster's metadata (MetadataTTL 6 s) for every Writer, and a
		// Writer on it fails with UNKNOWN_TOPIC_OR_PARTITION for a topic
		// created after the cache was filled, without asking a broker.
		Transport:    &kafkago.Transport{ClientID: name + "-writer"},
		Addr:         kafkago.TCP(addrs...),
		Topic:        topic,
		RequiredAcks: kafkago.RequireAll,
		BatchSize:    500,
		BatchTimeout: 10 * time.Millisecond,
		Compression:  compression,
		Completion: func(msgs []kafkago.Message, err error) {
			ackMu.Lock()
			defer ackMu.Unlock()
			if err != nil {
				completionErrs = append(completionErrs, err)
				return
			}
			for _, m := range msgs {
				acks[partOff{int32(m.Partition), m.Offset}] = string(m.Value)
			}
		},
	}
	msgs := make([]kafkago.Message, clientRecords)
	for i := range msgs {
		msgs[i].Value = []byte(harness.Value(name, int64(i)))
	}
	start := time.Now()
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	err = w.WriteMessages(wctx, msgs...)
	wcancel()
	if cerr := w.Close(); cerr != nil {
		t.Errorf("close kafka-go writer: %v", cerr)
	}
	if err != nil {
		t.Fatalf("kafka-go WriteMessages: %v (completion errors: %v)", err, completionErrs)
	}
	t.Logf("kafka-go wrote %d records in %v", clientRecords, time.Since(start).Round(time.Millisecond))
	ackMu.Lock() // the writer is closed: no more Completion calls
	if len(completionErrs) > 0 {
		t.Fatalf("kafka-go completion errors: %v", completionErrs)
	}
	ackMu.Unlock()
	checkAcks(t, acks, name, clientRecords)
	checkLogEnds(t, adm, topic, acks, clientRecords)

	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		n, ex := recv.missing(acks)
		return n == 0, fmt.Sprintf("%d acknowledged records not read yet (e.g. %s)", n, ex)
	})
	recv.check(t, acks)
	recv.mu.Lock()
	for i := range 2 {
		if recv.byMember[i] == 0 {
			t.Errorf("kafka-go reader %d read nothing", i)
		}
	}
	recv.mu.Unlock()
	waitCommittedAtEnd(t, adm, group, topic, clientPartitions, 30*time.Second)

	closeReaders()
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		return kadmGroupIs(adm, group, topic, "Empty", 0)
	})
	waitCommittedAtEnd(t, adm, group, topic, clientPartitions, 5*time.Second)
}

// brokerAddr returns which of addrs b is.
func brokerAddr(addrs []string, b kafkago.Broker) (string, bool) {
	want := net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
	for _, a := range addrs {
		if a == want {
			return a, true
		}
	}
	return "", false
}

// kadmGroupIs reports whether group is in state with members members
// (kadm DescribeGroups) whose assignments cover every partition of topic
// exactly once.
func kadmGroupIs(adm *kadm.Client, group, topic, state string, members int) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return false, "DescribeGroups: " + err.Error()
	}
	d, ok := ds[group]
	if !ok {
		return false, "group " + group + " not described"
	}
	if d.Err != nil || d.State != state || len(d.Members) != members {
		return false, fmt.Sprintf("group %s: err %v state %q, %d members; want %s with %d", group, d.Err, d.State, len(d.Members), state, members)
	}
	if members == 0 {
		return true, ""
	}
	owned := make(map[int32]int)
	for _, m := range d.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return false, fmt.Sprintf("member %s: assignment not of the consumer protocol", m.MemberID)
		}
		n := 0
		for _, at := range a.Topics {
			if at.Topic != topic {
				continue
			}
			for _, p := range at.Partitions {
				owned[p]++
				n++
			}
		}
		if n == 0 {
			return false, fmt.Sprintf("member %s (%s) has no partitions of %s", m.MemberID, m.ClientID, topic)
		}
	}
	for p := range int32(clientPartitions) {
		if owned[p] != 1 {
			return false, fmt.Sprintf("partition %d assigned %d times: %v", p, owned[p], owned)
		}
	}
	return true, ""
}

// testSaramaAlterConfig checks the legacy, non-incremental AlterConfigs
// (key 33) through sarama's ClusterAdmin.AlterConfig: the listed configs
// replace the topic's whole set of dynamic configs, ValidateOnly changes
// nothing, and a bad value or an unknown topic is refused per resource.
func testSaramaAlterConfig(t *testing.T, c *harness.Cluster) {
	const topic = "sarama-alter-configs"
	createClientTopic(t, c, c.Admin(t), topic)
	admin, err := sarama.NewClusterAdmin(strings.Split(c.Bootstrap(), ","),
		saramaConfig("sarama-alter-configs", func(cfg *sarama.Config) { cfg.Version = sarama.V3_6_0_0 }))
	if err != nil {
		t.Fatalf("sarama cluster admin: %v", err)
	}
	defer admin.Close()
	str := func(s string) *string { return &s }
	// configIs reports whether DescribeConfig (from whichever broker sarama
	// asks) shows key at value, set on the topic (dynamic) or not.
	configIs := func(key, value string, dynamic bool) (bool, string) {
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		if err != nil {
			return false, fmt.Sprintf("DescribeConfig: %v", err)
		}
		for _, e := range entries {
			if e.Name == key {
				got := e.Source == sarama.SourceTopic
				return e.Value == value && got == dynamic,
					fmt.Sprintf("%s = %q (source %v), want %q dynamic=%v", key, e.Value, e.Source, value, dynamic)
			}
		}
		return false, fmt.Sprintf("%s not described", key)
	}
	alterErr := func(err error) sarama.KError {
		var ae *sarama.AlterConfigError
		if errors.As(err, &ae) {
			return ae.Err
		}
		return sarama.ErrNoError
	}

	// ValidateOnly: accepted, nothing changes.
	if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": str("3600000")}, true); err != nil {
		t.Fatalf("AlterConfig validate-only: %v", err)
	}
	if ok, msg := configIs("retention.ms", "604800000", false); !ok {
		t.Fatalf("after validate-only: %s", msg)
	}

	// Set retention.ms (and segment.ms).
	if err := admin.AlterConfig(sarama.TopicResource, topic,
		map[string]*string{"retention.ms": str("3600000"), "segment.ms": str("1200000")}, false); err != nil {
		t.Fatalf("AlterConfig set: %v", err)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) { return configIs("retention.ms", "3600000", true) })
	harness.WaitFor(t, 10*time.Second, func() (bool, string) { return configIs("segment.ms", "1200000", true) })

	// Refused resources change nothing.
	if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": str("soon")}, false); alterErr(err) != sarama.ErrInvalidConfig {
		t.Errorf("AlterConfig with a bad value: got %v, want INVALID_CONFIG", err)
	}
	if err := admin.AlterConfig(sarama.TopicResource, topic+"-missing", map[string]*string{"retention.ms": str("1")}, false); alterErr(err) != sarama.ErrUnknownTopicOrPartition {
		t.Errorf("AlterConfig on a missing topic: got %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if ok, msg := configIs("retention.ms", "3600000", true); !ok {
		t.Fatalf("after refused changes: %s", msg)
	}

	// Another single key replaces the whole set: retention.ms and
	// segment.ms go back to their defaults.
	if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"max.message.bytes": str("500000")}, false); err != nil {
		t.Fatalf("AlterConfig replace: %v", err)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) { return configIs("max.message.bytes", "500000", true) })
	harness.WaitFor(t, 10*time.Second, func() (bool, string) { return configIs("retention.ms", "604800000", false) })
	harness.WaitFor(t, 10*time.Second, func() (bool, string) { return configIs("segment.ms", "604800000", false) })
}
