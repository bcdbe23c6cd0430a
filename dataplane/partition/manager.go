package partition

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/storage"
)

// Manager holds every replica hosted on this broker.
//
// ApplyImage is called from one goroutine (the metadata client's); every
// other method is safe for concurrent use by request handlers, which read an
// immutable snapshot and never block on ApplyImage.
type Manager struct {
	cfg   Config
	store *storage.Manager

	// applyMu serialises ApplyImage and Close.
	applyMu sync.Mutex
	closed  bool
	// current is replaced (never mutated) by ApplyImage.
	current atomic.Pointer[snapshot]

	// isr is the ISR-change plumbing shared by the partitions (isr.go). Its
	// two goroutines, the shrink check and the AlterPartition sender
	// (isrsend.go), run when Config.AlterPartition is set and stop at Close.
	isr       *isrEnv
	isrCancel context.CancelFunc
	isrWG     sync.WaitGroup

	// followers are the follower fetches parked here, by replica
	// (followerwait.go).
	followers *followerWaits
	// onLeaders are the leadership hooks (SetOnLeaders), one per topic;
	// the slice is replaced, never modified, under hooksMu.
	onLeaders atomic.Pointer[[]*leaderHook]
	hooksMu   sync.Mutex
	// fdHintOnce: the open-file limit hint was logged.
	fdHintOnce atomic.Bool
	// applied is what ApplyImage remembers between images (applyMu).
	applied applyState
	// txnVerifier is the KIP-890 hook (SetTxnVerifier, txn.go).
	txnVerifier txnVerifierRef
}

type leaderHook struct {
	topic string
	fn    func(*image.Image, []*Partition)
}

// SetOnLeaders installs fn, called at the end of ApplyImage (from its
// goroutine, in image order) with the image and the replicas of topic this
// broker now leads, whenever the image changed that topic (created,
// deleted, re-created, any partition changed), and with the first image
// applied after SetOnLeaders. The group coordinator uses it to load and
// unload the __consumer_offsets partitions it leads, the transaction
// coordinator those of __transaction_state. Each topic has at most one
// hook (a second call replaces the first). fn must not block nor call
// ApplyImage.
func (m *Manager) SetOnLeaders(topic string, fn func(img *image.Image, led []*Partition)) {
	m.hooksMu.Lock()
	defer m.hooksMu.Unlock()
	var hooks []*leaderHook
	if cur := m.onLeaders.Load(); cur != nil {
		for _, h := range *cur {
			if h.topic != topic {
				hooks = append(hooks, h)
			}
		}
	}
	hooks = append(hooks, &leaderHook{topic: topic, fn: fn})
	m.onLeaders.Store(&hooks)
}

type snapshot struct {
	img *image.Image
	// topics has every topic of img, with the replicas hosted here.
	topics map[string]*hostedTopic
	closed bool
}

// NewManager returns a manager over the broker's storage with
// DefaultConfig(nodeID) and logger (nil: no logging).
func NewManager(nodeID int32, store *storage.Manager, logger hclog.Logger) *Manager {
	cfg := DefaultConfig(nodeID)
	if logger != nil {
		cfg.Logger = logger
	}
	m, err := New(cfg, store)
	if err != nil {
		// Only a negative node id gets here; the broker validated it.
		panic(err)
	}
	return m
}

// New returns a manager for cfg over the broker's storage.
func New(cfg Config, store *storage.Manager) (*Manager, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("partition: storage manager is nil")
	}
	if cfg.ReplicaLagTimeMax == 0 {
		cfg.ReplicaLagTimeMax = DefaultReplicaLagTimeMax
	}
	cfg.Logger = cfg.Logger.Named("partition")
	m := &Manager{cfg: cfg, store: store, followers: newFollowerWaits(cfg.Now)}
	m.applied.retry = map[string]bool{}
	m.current.Store(&snapshot{img: image.New(), topics: map[string]*hostedTopic{}})
	ctx, cancel := context.WithCancel(context.Background())
	m.isrCancel = cancel
	m.isr = &isrEnv{alter: cfg.AlterPartition, brokerEpoch: cfg.BrokerEpoch, image: m.Image,
		lagMax: cfg.ReplicaLagTimeMax}
	if cfg.AlterPartition != nil {
		m.isr.sender = newISRSender(cfg.AlterPartition, cfg.Logger)
		m.goISR(func() { m.isr.sender.run(ctx) })
		m.goISR(func() { m.runISRChecks(ctx, max(cfg.ReplicaLagTimeMax/2, time.Millisecond)) })
	}
	return m, nil
}

// goISR runs fn in a goroutine that Close waits for.
func (m *Manager) goISR(fn func()) {
	m.isrWG.Add(1)
	go func() {
		defer m.isrWG.Done()
		fn()
	}()
}

// Image is the last image applied (empty before the first).
func (m *Manager) Image() *image.Image { return m.current.Load().img }

// DataDir is the directory holding the broker's partition logs.
func (m *Manager) DataDir() string { return m.store.Dir() }

// Get returns the hosted replica of a partition, or nil.
func (m *Manager) Get(topic string, partition int32) *Partition {
	return m.current.Load().get(topic, partition)
}

func (s *snapshot) get(topic string, partition int32) *Partition {
	if ht := s.topics[topic]; ht != nil {
		return ht.parts[partition]
	}
	return nil
}

// each calls fn with every hosted replica.
func (s *snapshot) each(fn func(*Partition)) {
	for _, ht := range s.topics {
		for _, p := range ht.parts {
			fn(p)
		}
	}
}

// Partition returns the replica of a partition for a request:
// ErrUnknownTopicOrPartition when the image has no such partition,
// ErrNotLeaderOrFollower when it exists but is not hosted here, ErrClosed
// after Close. The caller still checks the role (Read, AppendAsLeader do).
func (m *Manager) Partition(topic string, partition int32) (*Partition, error) {
	s := m.current.Load()
	if s.closed {
		return nil, ErrClosed
	}
	if p := s.get(topic, partition); p != nil {
		return p, nil
	}
	if s.img.Partition(topic, partition) == nil {
		return nil, ErrUnknownTopicOrPartition
	}
	return nil, ErrNotLeaderOrFollower
}

// Partitions returns every hosted replica.
func (m *Manager) Partitions() []*Partition {
	var out []*Partition
	m.current.Load().each(func(p *Partition) { out = append(out, p) })
	return out
}

// ApplyImage makes the hosted replicas match the image: creates logs for new
// assignments, deletes logs of deleted topics and of partitions moved away,
// sets leader/follower roles and epochs, and applies topic config changes.
// Called in image order from one goroutine.
//
// The work is proportional to what changed since the previous image, not
// to the cluster: images are structurally shared (controller/image), so a
// topic whose *image.Topic is the one applied last time is skipped, and
// within a changed topic so is a partition whose *image.Partition is.
// Everything is looked at again when something every topic depends on
// changed: the dynamic broker configs (topic config defaults) or a
// broker's address (followers' leader addresses). Pointers that differ
// only cost the work: a full snapshot applies like a first image.
//
// The logs of partitions newly assigned here are opened (created) on up
// to storage.Config.RecoveryThreads goroutines at once, so a topic of
// many partitions, or the first image after a start, does not wait on
// each log's files and fsyncs in turn.
//
// Logs found on disk that the image does not mention are kept while the
// image is empty (Index 0: a restarted broker before its first metadata),
// and deleted by the first non-empty image; later, the manager deletes
// the logs of partitions it stops hosting itself. A topic deleted and
// re-created under the same name is recognised by its id: the old log is
// deleted and a new one created.
func (m *Manager) ApplyImage(img *image.Image) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if m.closed || img == nil {
		return
	}
	log := m.cfg.Logger
	old := m.current.Load()
	st := &m.applied

	// What every topic depends on.
	all := !st.started
	if !all && !maps.Equal(st.brokerConfigs, img.BrokerConfigs) {
		log.Info("dynamic broker configs changed; re-applying every topic's configs")
		all = true
	}
	addrsChanged := m.updateBrokerAddrs(img)
	if !st.started {
		addrsChanged = false
	}
	all = all || addrsChanged
	st.started = true
	st.brokerConfigs = img.BrokerConfigs

	topics := make(map[string]*hostedTopic, len(img.Topics))
	var changed []string
	for name, t := range img.Topics {
		if t == nil {
			continue
		}
		if ht := old.topics[name]; ht != nil && ht.topic == t && !all && !st.retry[name] {
			topics[name] = ht
			continue
		}
		changed = append(changed, name)
	}
	var gone []string
	for name := range old.topics {
		if img.Topics[name] == nil {
			gone = append(gone, name)
		}
	}
	slices.Sort(changed)
	slices.Sort(gone)
	clear(st.retry)

	var fc FollowerChanges
	// due are the followers that must start fetching a partition from here.
	due := map[int32]bool{}
	for _, name := range gone {
		delete(st.traffic, name)
		ht := old.topics[name]
		for _, idx := range sortedKeys(ht.parts) {
			p := ht.parts[idx]
			log.Info("topic deleted; deleting its log", "topic", name, "partition", idx)
			m.remove(p)
		}
		for _, idx := range sortedKeys(ht.followers) {
			fc.Unfollowed = append(fc.Unfollowed, storage.TopicPartition{Topic: name, Partition: idx})
		}
	}

	// Plan each changed topic: keep, remove, or open its hosted replicas.
	plans := make([]*topicPlan, 0, len(changed))
	var jobs []openJob
	for _, name := range changed {
		t := img.Topics[name]
		pl := &topicPlan{name: name, t: t, parts: make(map[int32]*Partition, len(t.Partitions)), opened: map[int32]bool{},
			traffic: st.trafficOf(name)}
		var cfgErr error
		pl.logCfg, pl.settings, cfgErr = TopicConfigs(img, t)
		if cfgErr != nil {
			log.Warn("bad topic config, using the default", "topic", name, "error", cfgErr)
		}
		oldParts := map[int32]*Partition{}
		if ht := old.topics[name]; ht != nil {
			pl.prev = ht
			if ht.topic.ID == t.ID {
				oldParts = ht.parts
			} else {
				for _, idx := range sortedKeys(ht.parts) {
					log.Info("topic re-created; deleting the old log", "topic", name, "partition", idx)
					m.remove(ht.parts[idx])
				}
			}
		}
		hosted := make(map[int32]bool, len(oldParts))
		for _, ip := range t.Partitions {
			if ip == nil || !slices.Contains(ip.Replicas, m.cfg.NodeID) {
				continue
			}
			hosted[ip.Partition] = true
			if p := oldParts[ip.Partition]; p != nil {
				pl.parts[ip.Partition] = p
				continue
			}
			jobs = append(jobs, openJob{plan: pl, tp: storage.TopicPartition{Topic: name, Partition: ip.Partition}})
		}
		for _, idx := range sortedKeys(oldParts) {
			if !hosted[idx] {
				log.Info("partition no longer assigned here; deleting its log", "topic", name, "partition", idx)
				m.remove(oldParts[idx])
			}
		}
		plans = append(plans, pl)
	}

	m.openAll(jobs)
	for _, j := range jobs {
		if j.p == nil {
			st.retry[j.plan.name] = true
			continue
		}
		j.plan.parts[j.tp.Partition] = j.p
		j.plan.opened[j.tp.Partition] = true
	}

	// Apply the metadata of what changed.
	for _, pl := range plans {
		topics[pl.name] = m.applyTopic(pl, &fc, due)
	}

	if img.Index > 0 && !st.strayScanDone {
		st.strayScanDone = true
		for tp := range m.store.Logs() {
			if ht := topics[tp.Topic]; ht != nil && ht.parts[tp.Partition] != nil {
				continue
			}
			log.Info("deleting stray log not assigned here", "topic", tp.Topic, "partition", tp.Partition)
			if err := m.store.Delete(tp); err != nil {
				log.Error("cannot delete log", "topic", tp.Topic, "partition", tp.Partition, "error", err)
			}
		}
	}
	m.current.Store(&snapshot{img: img, topics: topics})
	if len(due) > 0 {
		// Once published: a woken follower's next fetch finds the
		// partitions.
		m.followers.changed(sortedKeys(due))
	}
	if m.cfg.OnFollowers != nil && (len(fc.Followed) > 0 || len(fc.Unfollowed) > 0) {
		m.cfg.OnFollowers(fc)
	}
	var hooks []*leaderHook
	if cur := m.onLeaders.Load(); cur != nil {
		hooks = *cur
	}
	for _, h := range hooks {
		if h.fn == nil {
			continue
		}
		_, touched := slices.BinarySearch(changed, h.topic)
		_, deleted := slices.BinarySearch(gone, h.topic)
		if touched || deleted || st.leadersTold[h.topic] != h {
			if st.leadersTold == nil {
				st.leadersTold = map[string]*leaderHook{}
			}
			st.leadersTold[h.topic] = h
			var led []*Partition
			if ht := topics[h.topic]; ht != nil {
				for _, idx := range sortedKeys(ht.parts) {
					if p := ht.parts[idx]; p.State().Role == RoleLeader {
						led = append(led, p)
					}
				}
			}
			h.fn(img, led)
		}
	}
}

// hostedTopic is what this broker hosts of one topic as of one image,
// with what was applied to it. Immutable once in a snapshot; a changed
// topic gets a new one.
type hostedTopic struct {
	topic *image.Topic
	// parts are the replicas hosted here, by partition.
	parts map[int32]*Partition
	// followers are the hosted replicas following a leader on another
	// broker, as Config.OnFollowers was told.
	followers map[int32]Follower
	logCfg    storage.LogConfig
	settings  TopicSettings
	// traffic counts the topic's bytes and records through this broker;
	// the same counters while the topic (by name) exists.
	traffic *Traffic
}

// applyState is what ApplyImage remembers of the images it applied, to
// tell what changed. Guarded by applyMu.
type applyState struct {
	started bool
	// brokerConfigs and addrs are those of the last image applied.
	brokerConfigs map[string]string
	brokers       map[int32]*image.Broker
	addrs         map[int32]string
	// strayScanDone: a non-empty image was applied, and the logs on disk
	// it did not assign here were deleted.
	strayScanDone bool
	// retry names the topics with a log that could not be opened: they
	// are applied again with the next image.
	retry map[string]bool
	// leadersTold is the leader hook last called per topic (a hook just
	// installed is called with the next image whatever it changed).
	leadersTold map[string]*leaderHook
	// traffic holds each topic's counters, kept across images (and a
	// re-creation under the same name) until the topic is deleted.
	traffic map[string]*Traffic
}

// trafficOf returns the counters of topic, created on first use.
func (st *applyState) trafficOf(topic string) *Traffic {
	if st.traffic == nil {
		st.traffic = map[string]*Traffic{}
	}
	t := st.traffic[topic]
	if t == nil {
		t = &Traffic{}
		st.traffic[topic] = t
	}
	return t
}

// topicPlan is one changed topic being applied.
type topicPlan struct {
	name     string
	t        *image.Topic
	prev     *hostedTopic // nil: new topic
	logCfg   storage.LogConfig
	settings TopicSettings
	parts    map[int32]*Partition
	opened   map[int32]bool // partitions whose replica was created for this image
	traffic  *Traffic
}

// openJob is one log to open for a topic plan; p is set when it opened.
type openJob struct {
	plan *topicPlan
	tp   storage.TopicPartition
	p    *Partition
}

// openAll opens the jobs' logs on up to the storage's RecoveryThreads
// goroutines; a job whose log cannot be opened keeps p nil (logged).
func (m *Manager) openAll(jobs []openJob) {
	if len(jobs) == 0 {
		return
	}
	start := time.Now()
	run := func(j *openJob) {
		p, err := m.open(j.tp, j.plan.t.ID, j.plan.logCfg, j.plan.traffic)
		if err != nil {
			m.cfg.Logger.Error("cannot open partition log", "topic", j.tp.Topic, "partition", j.tp.Partition, "error", err)
			if errors.Is(err, syscall.EMFILE) && m.fdHintOnce.CompareAndSwap(false, true) {
				var lim syscall.Rlimit
				_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
				m.cfg.Logger.Error("out of file descriptors: every hosted partition keeps its active segment open, "+
					"so raise the open-file limit (ulimit -n, LimitNOFILE= in systemd) above the number of partitions this broker hosts plus connections",
					"open_file_limit", lim.Cur, "logs_opening", len(jobs))
			}
			return
		}
		j.p = p
	}
	// A log storage has open already (a restarted broker's first image)
	// costs no file work: those are taken here, the rest in parallel.
	var g errgroup.Group
	g.SetLimit(m.store.RecoveryThreads())
	created := 0
	for i := range jobs {
		j := &jobs[i]
		if l := m.store.Get(j.tp); l != nil && l.TopicID() == j.plan.t.ID {
			run(j)
			continue
		}
		created++
		g.Go(func() error { run(j); return nil })
	}
	_ = g.Wait()
	if created > 1 {
		m.cfg.Logger.Info("partition logs created", "logs", created, "workers", min(created, m.store.RecoveryThreads()),
			"took", time.Since(start).Round(time.Millisecond).String())
	}
}

// applyTopic applies a changed topic's metadata to its hosted replicas and
// records its follower changes in fc, and in due the followers that must
// start fetching a partition it leads; it returns the topic's new state.
// A replica whose partition and configs are those applied last time is
// left alone.
func (m *Manager) applyTopic(pl *topicPlan, fc *FollowerChanges, due map[int32]bool) *hostedTopic {
	log := m.cfg.Logger
	ht := &hostedTopic{topic: pl.t, parts: pl.parts, followers: map[int32]Follower{}, logCfg: pl.logCfg, settings: pl.settings,
		traffic: pl.traffic}
	var prevParts []*image.Partition
	prevFollowers := map[int32]Follower{}
	sameCfg := false
	if pl.prev != nil {
		prevFollowers = pl.prev.followers
		if pl.prev.topic.ID == pl.t.ID {
			prevParts = pl.prev.topic.Partitions
			sameCfg = pl.prev.logCfg == pl.logCfg && pl.prev.settings == pl.settings
		}
	}
	for i, ip := range pl.t.Partitions {
		if ip == nil {
			continue
		}
		p := pl.parts[ip.Partition]
		if p == nil {
			continue
		}
		isNew := pl.opened[ip.Partition]
		unchanged := !isNew && sameCfg && i < len(prevParts) && prevParts[i] == ip
		if !unchanged {
			if !isNew && p.logConfigChanged(pl.logCfg) {
				if err := p.log.SetConfig(pl.logCfg); err != nil {
					log.Error("cannot apply topic config", "topic", pl.name, "partition", ip.Partition, "error", err)
				} else {
					log.Info("topic config applied", "topic", pl.name, "partition", ip.Partition)
				}
			}
			for _, r := range p.applyMetadata(ip, pl.settings) {
				due[r] = true
			}
		}
		if ip.Leader < 0 || ip.Leader == m.cfg.NodeID {
			continue
		}
		f := Follower{Partition: p, LeaderID: ip.Leader, LeaderEpoch: ip.LeaderEpoch, LeaderAddr: m.applied.addrs[ip.Leader]}
		ht.followers[ip.Partition] = f
		if prev, ok := prevFollowers[ip.Partition]; !ok || prev != f {
			fc.Followed = append(fc.Followed, f)
		}
	}
	for _, idx := range sortedKeys(prevFollowers) {
		if _, ok := ht.followers[idx]; !ok {
			fc.Unfollowed = append(fc.Unfollowed, storage.TopicPartition{Topic: pl.name, Partition: idx})
		}
	}
	return ht
}

// updateBrokerAddrs records the brokers' addresses of img and reports
// whether any changed (a broker registered, left, or moved).
func (m *Manager) updateBrokerAddrs(img *image.Image) bool {
	st := &m.applied
	same := len(st.brokers) == len(img.Brokers)
	if same {
		for id, b := range img.Brokers {
			if st.brokers[id] != b {
				same = false
				break
			}
		}
	}
	if same {
		return false
	}
	addrs := make(map[int32]string, len(img.Brokers))
	for id, b := range img.Brokers {
		if b == nil {
			continue
		}
		host, port, ok := b.Endpoint(m.cfg.InterBrokerListener)
		if !ok {
			if id != m.cfg.NodeID {
				m.cfg.Logger.Warn("broker has no inter-broker listener: its partitions are not followed from it",
					"broker", id, "listener", m.cfg.InterBrokerListener)
			}
			continue
		}
		addrs[id] = net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	st.brokers = maps.Clone(img.Brokers)
	changed := !maps.Equal(st.addrs, addrs)
	st.addrs = addrs
	return changed
}

// FollowerChanges is how the replicas this broker follows (hosted here,
// with a live leader on another broker) changed with one image.
type FollowerChanges struct {
	// Followed are the replicas followed from this image on, and those
	// whose replica, leader, leader epoch or leader address changed.
	Followed []Follower
	// Unfollowed are the partitions no longer followed: now led here,
	// leaderless, moved away or deleted. A partition is never in both.
	Unfollowed []storage.TopicPartition
}

func sortedKeys[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// open opens (or creates) the log of a newly assigned partition, whose
// traffic counts in traffic (its topic's). A log on disk that belongs to an
// older topic of the same name is deleted first.
func (m *Manager) open(tp storage.TopicPartition, topicID [16]byte, cfg storage.LogConfig, traffic *Traffic) (*Partition, error) {
	existing := m.store.Get(tp)
	// A zero id is a log without partition.metadata: assume it is ours.
	if existing != nil && existing.TopicID() != topicID && existing.TopicID() != [16]byte{} {
		m.cfg.Logger.Info("log on disk belongs to an older topic of that name; deleting it", "topic", tp.Topic, "partition", tp.Partition)
		if err := m.store.Delete(tp); err != nil {
			return nil, fmt.Errorf("delete stale log: %w", err)
		}
		existing = nil
	}
	l, err := m.store.GetOrCreate(tp, topicID, cfg)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		// A log opened at start-up has the storage defaults: apply the topic's.
		if err := l.SetConfig(cfg); err != nil {
			return nil, fmt.Errorf("apply topic config: %w", err)
		}
	}
	p := newPartition(tp, topicID, l, m.cfg)
	p.traffic = traffic
	// The cleaner stays below the high watermark: records above it may be
	// truncated away, and what they superseded must survive that.
	l.SetCleanBound(p.HighWatermark)
	p.logConfig = cfg
	p.env = m.isr
	p.followers = m.followers
	p.txnVerifier = &m.txnVerifier
	return p, nil
}

// remove stops serving p and deletes its log.
func (m *Manager) remove(p *Partition) {
	p.close()
	if err := m.store.Delete(p.tp); err != nil {
		m.cfg.Logger.Error("cannot delete log", "topic", p.tp.Topic, "partition", p.tp.Partition, "error", err)
	}
}

// logConfigChanged records cfg and reports whether it differs from the
// config last applied. Called only from ApplyImage.
func (p *Partition) logConfigChanged(cfg storage.LogConfig) bool {
	if p.logConfig == cfg {
		return false
	}
	p.logConfig = cfg
	return true
}

// Close stops serving: every replica refuses further requests and waiting
// requests are woken (they answer NOT_LEADER_OR_FOLLOWER). It does not close
// the storage manager, which the broker owns. Idempotent.
func (m *Manager) Close() error {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	old := m.current.Load()
	old.each((*Partition).close)
	m.current.Store(&snapshot{img: old.img, topics: map[string]*hostedTopic{}, closed: true})
	m.isrCancel()
	m.isrWG.Wait()
	return nil
}
