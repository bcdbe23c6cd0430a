package console

// Collector: what the pages ask the cluster, each page bounded by
// Config.Timeout, its independent requests sent at once.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

// Errors a page may list.
var (
	ErrNoMetadata    = errors.New("this node has no cluster metadata yet")
	ErrNoBrokerAlive = errors.New("no broker is alive (unfenced and accepting connections) to ask")
)

// Collector gathers the pages' data. Safe for concurrent use.
type Collector struct {
	cfg Config
	now func() time.Time

	mu struct {
		sync.Mutex
		// cl is the cluster client, made on first use; quorum the client
		// of Config.QuorumAddr.
		cl     *kgo.Client
		quorum *kgo.Client
		closed bool
	}
}

// NewCollector returns a Collector for cfg (validated).
func NewCollector(cfg Config) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Collector{cfg: cfg, now: time.Now}, nil
}

// Close closes the clients. Idempotent.
func (c *Collector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.closed = true
	if c.mu.cl != nil {
		c.mu.cl.Close()
		c.mu.cl = nil
	}
	if c.mu.quorum != nil {
		c.mu.quorum.Close()
		c.mu.quorum = nil
	}
}

// clientOpts are the cluster clients' options: short dials and retries,
// since every page is bounded anyway.
func clientOpts(seeds []string, dial func(context.Context, string, string) (net.Conn, error)) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID("skein-console"),
		kgo.DialTimeout(time.Second),
		kgo.MetadataMinAge(500 * time.Millisecond),
		kgo.MetadataMaxAge(10 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
	if dial != nil {
		opts = append(opts, kgo.Dialer(dial))
	}
	return opts
}

// client returns the cluster client, made on first use from
// Config.Bootstrap and the brokers of img.
func (c *Collector) client(img *image.Image) (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, errors.New("console closed")
	}
	if c.mu.cl != nil {
		return c.mu.cl, nil
	}
	var seeds []string
	if c.cfg.Bootstrap != nil {
		seeds = append(seeds, c.cfg.Bootstrap()...)
	}
	for _, id := range img.BrokerIDs() {
		if addr := brokerAddr(img.Brokers[id]); !slices.Contains(seeds, addr) {
			seeds = append(seeds, addr)
		}
	}
	if len(seeds) == 0 {
		return nil, errors.New("no broker registered yet")
	}
	cl, err := kgo.NewClient(clientOpts(seeds, c.cfg.Dial)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	c.mu.cl = cl
	return cl, nil
}

// quorumClient returns the client of Config.QuorumAddr, nil when unset.
func (c *Collector) quorumClient() (*kgo.Client, error) {
	if c.cfg.QuorumAddr == nil {
		return nil, nil
	}
	addr := c.cfg.QuorumAddr()
	if addr == "" {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return nil, errors.New("console closed")
	}
	if c.mu.quorum == nil {
		cl, err := kgo.NewClient(clientOpts([]string{addr}, c.cfg.QuorumDial)...)
		if err != nil {
			return nil, fmt.Errorf("kafka client: %w", err)
		}
		c.mu.quorum = cl
	}
	return c.mu.quorum, nil
}

// errorList collects a page's errors from concurrent parts.
type errorList struct {
	mu   sync.Mutex
	list []string
}

func (e *errorList) add(what string, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer in time (%w)", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, what+": "+err.Error())
}

func (e *errorList) sorted() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	sort.Strings(e.list)
	return e.list
}

// pageFunc fills a page from the node's image, bounded by ctx; errors
// go to errs, except ErrNotFound, returned.
type pageFunc func(ctx context.Context, img *image.Image, errs *errorList) error

// collect runs fill (not when the node has no image yet: ErrNoMetadata
// is the page's error then) with a context bounded by Config.Timeout, and
// returns the common part of the page.
func (c *Collector) collect(ctx context.Context, fill pageFunc) (Page, error) {
	start := c.now()
	var errs errorList
	img := c.cfg.Image()
	if img == nil || (img.Index == 0 && len(img.Brokers) == 0) {
		errs.add("metadata", ErrNoMetadata)
		img = nil
	} else {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
		if err := fill(ctx, img, &errs); err != nil {
			return Page{}, err
		}
	}
	p := Page{Node: c.cfg.Node, Collected: start, Took: c.now().Sub(start), Errors: errs.sorted()}
	if img != nil {
		p.ClusterID = img.ClusterID
	}
	return p, nil
}

// Probe dials every broker of img at once and reports which accepted a
// connection within Config.ProbeTimeout.
func (c *Collector) Probe(ctx context.Context, img *image.Image) map[int32]bool {
	out := make(map[int32]bool, len(img.Brokers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, b := range img.Brokers {
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
			defer cancel()
			var d net.Dialer
			conn, err := d.DialContext(dctx, "tcp", brokerAddr(b))
			if err == nil {
				_ = conn.Close()
			}
			mu.Lock()
			out[id] = err == nil
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// alive is which brokers are unfenced and reachable.
func alive(img *image.Image, reachable map[int32]bool) map[int32]bool {
	out := make(map[int32]bool, len(img.Brokers))
	for id, b := range img.Brokers {
		out[id] = !b.Fenced && reachable[id]
	}
	return out
}

// Overview collects the overview page.
func (c *Collector) Overview(ctx context.Context) Overview {
	var o Overview
	o.Page, _ = c.collect(ctx, func(ctx context.Context, img *image.Image, errs *errorList) error {
		var wg sync.WaitGroup
		wg.Go(func() {
			q, err := c.quorum(ctx, img)
			errs.add("controller quorum (DescribeQuorum)", err)
			o.Quorum = q
		})
		o.MetadataOffset, o.ActiveController = img.Index, img.ActiveController
		o.Brokers = brokerRows(img, c.Probe(ctx, img))
		o.Counts = counts(img, o.Brokers)
		wg.Wait()
		return nil
	})
	return o
}

// quorum asks DescribeQuorum of Config.QuorumAddr, or through the brokers.
func (c *Collector) quorum(ctx context.Context, img *image.Image) (*Quorum, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = metalog.Topic
	t.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = []kmsg.DescribeQuorumRequestTopic{t}

	qcl, err := c.quorumClient()
	if err != nil {
		return nil, err
	}
	var resp *kmsg.DescribeQuorumResponse
	if qcl != nil {
		kresp, err := qcl.SeedBrokers()[0].Request(ctx, req)
		if err != nil {
			return nil, err
		}
		resp = kresp.(*kmsg.DescribeQuorumResponse)
	} else {
		cl, err := c.client(img)
		if err != nil {
			return nil, err
		}
		if resp, err = req.RequestWith(ctx, cl); err != nil {
			return nil, err
		}
	}
	return QuorumFromResponse(resp, c.now())
}

// QuorumFromResponse reads the one partition of a DescribeQuorum answer
// (the metadata log's), with each voter's last contact as of now.
func QuorumFromResponse(resp *kmsg.DescribeQuorumResponse, now time.Time) (*Quorum, error) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if resp.ErrorMessage != nil && *resp.ErrorMessage != "" {
			return nil, fmt.Errorf("%w (%s)", err, *resp.ErrorMessage)
		}
		return nil, err
	}
	listeners := map[int32]string{}
	for _, n := range resp.Nodes {
		for _, l := range n.Listeners {
			if !strings.EqualFold(l.Name, "RAFT") {
				listeners[n.NodeID] = net.JoinHostPort(l.Host, fmt.Sprint(l.Port))
			}
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return nil, err
			}
			q := &Quorum{LeaderID: p.LeaderID, Term: p.LeaderEpoch, HighWatermark: p.HighWatermark}
			voter := func(rs kmsg.DescribeQuorumResponseTopicPartitionReplicaState, role string) Voter {
				v := Voter{ID: rs.ReplicaID, Role: role, Listener: listeners[rs.ReplicaID], LogEndOffset: rs.LogEndOffset, Lag: -1, LastContact: -1}
				if rs.LogEndOffset >= 0 {
					v.Lag = max(p.HighWatermark-rs.LogEndOffset, 0)
				}
				switch {
				case rs.ReplicaID == p.LeaderID:
					v.Role, v.LastContact = "leader", 0
				case rs.LastFetchTimestamp >= 0:
					v.LastContact = max(now.Sub(time.UnixMilli(rs.LastFetchTimestamp)), 0)
				}
				return v
			}
			for _, rs := range p.CurrentVoters {
				q.Voters = append(q.Voters, voter(rs, "follower"))
			}
			for _, rs := range p.Observers {
				q.Observers = append(q.Observers, voter(rs, "observer"))
			}
			return q, nil
		}
	}
	return nil, errors.New("no quorum partition in the answer")
}

// logDirSizes asks each of the given brokers at once for its replicas'
// sizes (DescribeLogDirs; topics nil: all): broker -> topic -> partition
// -> bytes. A broker that fails is reported in errs and left out.
func (c *Collector) logDirSizes(ctx context.Context, cl *kgo.Client, brokers []int32, topics kadm.TopicsSet, errs *errorList) map[int32]map[string]map[int32]int64 {
	adm := kadm.NewClient(cl)
	out := map[int32]map[string]map[int32]int64{}
	if len(brokers) == 0 {
		errs.add("sizes (DescribeLogDirs)", ErrNoBrokerAlive)
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range brokers {
		wg.Go(func() {
			dirs, err := adm.DescribeBrokerLogDirs(ctx, id, topics)
			if err == nil {
				err = dirs.Error()
			}
			if err != nil {
				errs.add(fmt.Sprintf("sizes on broker %d (DescribeLogDirs)", id), err)
				return
			}
			m := map[string]map[int32]int64{}
			dirs.EachPartition(func(p kadm.DescribedLogDirPartition) {
				if m[p.Topic] == nil {
					m[p.Topic] = map[int32]int64{}
				}
				m[p.Topic][p.Partition] += p.Size
			})
			mu.Lock()
			out[id] = m
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// aliveIDs lists the alive brokers by id.
func aliveIDs(alive map[int32]bool) []int32 {
	var ids []int32
	for id, ok := range alive {
		if ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Topics collects the topics page.
func (c *Collector) Topics(ctx context.Context) TopicList {
	var l TopicList
	l.Page, _ = c.collect(ctx, func(ctx context.Context, img *image.Image, errs *errorList) error {
		l.Topics = topicRows(img)
		cl, err := c.client(img)
		if err != nil {
			errs.add("sizes", err)
			return nil
		}
		reported := c.logDirSizes(ctx, cl, aliveIDs(alive(img, c.Probe(ctx, img))), nil, errs)
		for i := range l.Topics {
			l.Topics[i].SizeBytes = topicSize(partitionSizes(img.Topics[l.Topics[i].Name], reported))
		}
		return nil
	})
	return l
}

// ErrNotFound is a page's error for a topic or group that does not exist.
var ErrNotFound = errors.New("not found")

// Topic collects one topic's page; ErrNotFound when the image has no
// such topic.
func (c *Collector) Topic(ctx context.Context, name string) (TopicPage, error) {
	tp := TopicPage{Topic: TopicRow{Name: name, SizeBytes: -1}}
	var err error
	tp.Page, err = c.collect(ctx, func(ctx context.Context, img *image.Image, errs *errorList) error {
		t := img.Topics[name]
		if t == nil {
			return fmt.Errorf("topic %s: %w", name, ErrNotFound)
		}
		tp.Topic, tp.ID = topicRow(t), formatUUID(t.ID)
		live := alive(img, c.Probe(ctx, img))
		tp.Partitions = partitionRows(t, live)
		cl, err := c.client(img)
		if err != nil {
			errs.add("cluster", err)
			return nil
		}
		c.topicDetails(ctx, cl, t, live, &tp, errs)
		return nil
	})
	return tp, err
}

// topicDetails fills offsets, sizes and configs, asked at once.
func (c *Collector) topicDetails(ctx context.Context, cl *kgo.Client, t *image.Topic, live map[int32]bool, tp *TopicPage, errs *errorList) {
	adm := kadm.NewClient(cl)
	var starts, ends kadm.ListedOffsets
	var sizes map[int32]int64
	var wg sync.WaitGroup
	wg.Go(func() {
		var err error
		starts, err = adm.ListStartOffsets(ctx, t.Name)
		errs.add("log start offsets (ListOffsets)", err)
	})
	wg.Go(func() {
		var err error
		ends, err = adm.ListEndOffsets(ctx, t.Name)
		errs.add("log end offsets (ListOffsets)", err)
	})
	wg.Go(func() {
		set := kadm.TopicsSet{}
		for _, p := range t.Partitions {
			set.Add(t.Name, p.Partition)
		}
		sizes = partitionSizes(t, c.logDirSizes(ctx, cl, aliveIDs(live), set, errs))
	})
	wg.Go(func() {
		configs, err := topicConfigs(ctx, adm, t)
		errs.add("configs (DescribeConfigs)", err)
		tp.Configs = configs
	})
	wg.Wait()
	for i := range tp.Partitions {
		row := &tp.Partitions[i]
		if o, ok := starts.Lookup(t.Name, row.Partition); ok && o.Err == nil {
			row.LogStartOffset = o.Offset
		}
		if o, ok := ends.Lookup(t.Name, row.Partition); ok && o.Err == nil {
			row.LogEndOffset = o.Offset
		}
		if s, ok := sizes[row.Partition]; ok {
			row.SizeBytes = s
		}
	}
	tp.Topic.SizeBytes = topicSize(sizes)
}

// topicConfigs are every config of t with its source, by name.
func topicConfigs(ctx context.Context, adm *kadm.Client, t *image.Topic) ([]ConfigRow, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	rc, err := rcs.On(t.Name, nil)
	if err != nil {
		return nil, err
	}
	if rc.Err != nil {
		return nil, rc.Err
	}
	rows := make([]ConfigRow, 0, len(rc.Configs))
	for _, cfg := range rc.Configs {
		row := ConfigRow{
			Name: cfg.Key, Value: cfg.MaybeValue(), Source: configSource(cfg.Source), Sensitive: cfg.Sensitive,
			Set: cfg.Source == kmsg.ConfigSourceDynamicTopicConfig,
		}
		if cfg.Sensitive {
			row.Value = "(sensitive)"
		}
		rows = append(rows, row)
	}
	// The topic's own settings first, then the rest, each by name.
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Set != rows[j].Set {
			return rows[i].Set
		}
		return rows[i].Name < rows[j].Name
	})
	return rows, nil
}

// configSource names a config source as kafka-configs.sh does.
func configSource(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return "broker"
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "cluster default"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "broker static"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	case kmsg.ConfigSourceDynamicBrokerLoggerConfig:
		return "broker logger"
	}
	return strings.ToLower(s.String())
}

// formatUUID writes a topic id the way Kafka's tools do (URL-safe
// base64 without padding).
func formatUUID(id [16]byte) string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// Groups collects the consumer groups page: ListGroups of every alive
// broker (each lists the groups it coordinates), then DescribeGroups.
func (c *Collector) Groups(ctx context.Context) GroupList {
	var gl GroupList
	gl.Page, _ = c.collect(ctx, func(ctx context.Context, img *image.Image, errs *errorList) error {
		cl, err := c.client(img)
		if err != nil {
			errs.add("cluster", err)
			return nil
		}
		gl.Groups = c.groups(ctx, cl, aliveIDs(alive(img, c.Probe(ctx, img))), errs)
		return nil
	})
	return gl
}

func (c *Collector) groups(ctx context.Context, cl *kgo.Client, brokers []int32, errs *errorList) []GroupRow {
	if len(brokers) == 0 {
		errs.add("groups (ListGroups)", ErrNoBrokerAlive)
		return nil
	}
	var mu sync.Mutex
	byName := map[string]*GroupRow{}
	var wg sync.WaitGroup
	for _, id := range brokers {
		wg.Go(func() {
			resp, err := kmsg.NewPtrListGroupsRequest().RequestWith(ctx, cl.Broker(int(id)))
			if err == nil {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
			if err != nil {
				errs.add(fmt.Sprintf("groups on broker %d (ListGroups)", id), err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, g := range resp.Groups {
				byName[g.Group] = &GroupRow{Name: g.Group, State: g.GroupState, ProtocolType: g.ProtocolType, Members: -1, Coordinator: id}
			}
		})
	}
	wg.Wait()
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		described, err := kadm.NewClient(cl).DescribeGroups(ctx, names...)
		errs.add("groups (DescribeGroups)", err)
		for _, d := range described {
			row := byName[d.Group]
			if row == nil || d.Err != nil {
				errs.add("group "+d.Group, d.Err)
				continue
			}
			row.State, row.Protocol, row.Members = d.State, d.Protocol, len(d.Members)
			if d.ProtocolType != "" {
				row.ProtocolType = d.ProtocolType
			}
		}
	}
	rows := make([]GroupRow, 0, len(names))
	for _, n := range names {
		rows = append(rows, *byName[n])
	}
	return rows
}

// Group collects one group's page (kadm's Lag: DescribeGroups,
// OffsetFetch and ListOffsets); ErrNotFound when the group does not exist.
func (c *Collector) Group(ctx context.Context, name string) (GroupPage, error) {
	gp := GroupPage{Group: GroupRow{Name: name, Members: -1, Coordinator: -1}}
	var err error
	gp.Page, err = c.collect(ctx, func(ctx context.Context, img *image.Image, errs *errorList) error {
		cl, err := c.client(img)
		if err != nil {
			errs.add("cluster", err)
			return nil
		}
		lags, err := kadm.NewClient(cl).Lag(ctx, name)
		l, ok := lags[name]
		switch {
		case !ok:
			errs.add("group", err)
		case errors.Is(l.DescribeErr, kerr.GroupIDNotFound) || (l.DescribeErr == nil && l.State == "Dead"):
			return fmt.Errorf("group %s: %w", name, ErrNotFound)
		default:
			errs.add("group (DescribeGroups)", l.DescribeErr)
			errs.add("committed offsets (OffsetFetch)", l.FetchErr)
			fillGroup(&gp, l)
		}
		return nil
	})
	return gp, err
}

// fillGroup copies a described group's lag into gp.
func fillGroup(gp *GroupPage, l kadm.DescribedGroupLag) {
	gp.Group = GroupRow{
		Name: l.Group, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
		Members: len(l.Members), Coordinator: l.Coordinator.NodeID,
	}
	for _, m := range l.Members {
		row := MemberRow{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost}
		if m.InstanceID != nil {
			row.InstanceID = *m.InstanceID
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			assigned := map[string][]int32{}
			for _, t := range a.Topics {
				assigned[t.Topic] = append(assigned[t.Topic], t.Partitions...)
				row.Partitions += len(t.Partitions)
			}
			row.Assignment = FormatAssignment(assigned)
		}
		gp.Members = append(gp.Members, row)
	}
	for _, r := range l.Lag.Sorted() {
		row := OffsetRow{Topic: r.Topic, Partition: r.Partition, Committed: -1, End: -1, Lag: -1}
		if r.Commit.At >= 0 {
			row.Committed = r.Commit.At
		}
		if r.End.Err == nil && r.End.Offset >= 0 {
			row.End = r.End.Offset
		}
		if row.Committed >= 0 && r.Lag >= 0 {
			row.Lag = r.Lag
			gp.TotalLag += r.Lag
		}
		if r.Member != nil {
			row.Member, row.ClientID = r.Member.MemberID, r.Member.ClientID
		}
		gp.Offsets = append(gp.Offsets, row)
	}
}

// FormatAssignment writes topic -> partitions as "a[0,1] b[2]", topics
// and partitions sorted.
func FormatAssignment(m map[string][]int32) string {
	topics := make([]string, 0, len(m))
	for t := range m {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	parts := make([]string, 0, len(topics))
	for _, t := range topics {
		ps := slices.Clone(m[t])
		slices.Sort(ps)
		parts = append(parts, t+"["+FormatIDs(ps)+"]")
	}
	return strings.Join(parts, " ")
}

// FormatIDs writes ids comma-separated.
func FormatIDs(ids []int32) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, id)
	}
	return b.String()
}
