package partition

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

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

	// onLeaders is the leadership hook (SetOnLeaders); nil: none.
	onLeaders atomic.Pointer[func(*image.Image, []*Partition)]
}

// SetOnLeaders installs fn, called at the end of every ApplyImage (from its
// goroutine, in image order) with the image and every replica this broker
// now leads. The group coordinator uses it to load and unload the
// __consumer_offsets partitions it leads. fn must not block nor call
// ApplyImage.
func (m *Manager) SetOnLeaders(fn func(img *image.Image, led []*Partition)) {
	m.onLeaders.Store(&fn)
}

type snapshot struct {
	img        *image.Image
	partitions map[storage.TopicPartition]*Partition
	closed     bool
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
	m := &Manager{cfg: cfg, store: store}
	m.current.Store(&snapshot{img: image.New(), partitions: map[storage.TopicPartition]*Partition{}})
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

// Get returns the hosted replica of a partition, or nil.
func (m *Manager) Get(topic string, partition int32) *Partition {
	return m.current.Load().partitions[storage.TopicPartition{Topic: topic, Partition: partition}]
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
	if p := s.partitions[storage.TopicPartition{Topic: topic, Partition: partition}]; p != nil {
		return p, nil
	}
	if s.img.Partition(topic, partition) == nil {
		return nil, ErrUnknownTopicOrPartition
	}
	return nil, ErrNotLeaderOrFollower
}

// Partitions returns every hosted replica.
func (m *Manager) Partitions() []*Partition {
	s := m.current.Load()
	out := make([]*Partition, 0, len(s.partitions))
	for _, p := range s.partitions {
		out = append(out, p)
	}
	return out
}

// ApplyImage makes the hosted replicas match the image: creates logs for new
// assignments, deletes logs of deleted topics and of partitions moved away,
// sets leader/follower roles and epochs, and applies topic config changes.
// Called in image order from one goroutine.
//
// Logs found on disk that the image does not mention are kept while the
// image is empty (Index 0: a restarted broker before its first metadata),
// and deleted once a non-empty image says they are not assigned here. A
// topic deleted and re-created under the same name is recognised by its id:
// the old log is deleted and a new one created.
func (m *Manager) ApplyImage(img *image.Image) {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	if m.closed || img == nil {
		return
	}
	log := m.cfg.Logger
	old := m.current.Load()
	next := make(map[storage.TopicPartition]*Partition, len(old.partitions))
	assigned := map[storage.TopicPartition]bool{}

	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		logCfg, settings, cfgErr := TopicConfigs(img, t)
		if cfgErr != nil {
			log.Warn("bad topic config, using the default", "topic", name, "error", cfgErr)
		}
		for _, ip := range t.Partitions {
			if ip == nil || !slices.Contains(ip.Replicas, m.cfg.NodeID) {
				continue
			}
			tp := storage.TopicPartition{Topic: name, Partition: ip.Partition}
			assigned[tp] = true
			p := old.partitions[tp]
			if p != nil && p.topicID != t.ID {
				log.Info("topic re-created; deleting the old log", "topic", name, "partition", ip.Partition)
				m.remove(p)
				p = nil
			}
			if p == nil {
				var err error
				if p, err = m.open(tp, t.ID, logCfg); err != nil {
					log.Error("cannot open partition log", "topic", name, "partition", ip.Partition, "error", err)
					continue
				}
			} else if p.logConfigChanged(logCfg) {
				if err := p.log.SetConfig(logCfg); err != nil {
					log.Error("cannot apply topic config", "topic", name, "partition", ip.Partition, "error", err)
				} else {
					log.Info("topic config applied", "topic", name, "partition", ip.Partition)
				}
			}
			p.applyMetadata(ip, settings)
			next[tp] = p
		}
	}
	for tp, p := range old.partitions {
		if !assigned[tp] {
			log.Info("partition no longer assigned here; deleting its log", "topic", tp.Topic, "partition", tp.Partition)
			m.remove(p)
		}
	}
	if img.Index > 0 {
		for tp := range m.store.Logs() {
			if !assigned[tp] {
				log.Info("deleting stray log not assigned here", "topic", tp.Topic, "partition", tp.Partition)
				if err := m.store.Delete(tp); err != nil {
					log.Error("cannot delete log", "topic", tp.Topic, "partition", tp.Partition, "error", err)
				}
			}
		}
	}
	m.current.Store(&snapshot{img: img, partitions: next})
	if m.cfg.OnFollowers != nil {
		m.cfg.OnFollowers(followers(img, next, m.cfg.NodeID))
	}
	if fn := m.onLeaders.Load(); fn != nil && *fn != nil {
		var led []*Partition
		for _, p := range next {
			if p.State().Role == RoleLeader {
				led = append(led, p)
			}
		}
		(*fn)(img, led)
	}
}

// followers lists the hosted replicas that follow a leader on another
// broker, with that broker's address, in topic and partition order.
func followers(img *image.Image, parts map[storage.TopicPartition]*Partition, nodeID int32) []Follower {
	var out []Follower
	for _, name := range img.TopicNames() {
		for _, ip := range img.Topics[name].Partitions {
			if ip == nil || ip.Leader < 0 || ip.Leader == nodeID {
				continue
			}
			p := parts[storage.TopicPartition{Topic: name, Partition: ip.Partition}]
			if p == nil {
				continue
			}
			f := Follower{Partition: p, LeaderID: ip.Leader, LeaderEpoch: ip.LeaderEpoch}
			if b := img.Brokers[ip.Leader]; b != nil {
				f.LeaderAddr = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
			}
			out = append(out, f)
		}
	}
	return out
}

// open opens (or creates) the log of a newly assigned partition. A log on
// disk that belongs to an older topic of the same name is deleted first.
func (m *Manager) open(tp storage.TopicPartition, topicID [16]byte, cfg storage.LogConfig) (*Partition, error) {
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
	// The cleaner stays below the high watermark: records above it may be
	// truncated away, and what they superseded must survive that.
	l.SetCleanBound(p.HighWatermark)
	p.logConfig = cfg
	p.env = m.isr
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
	for _, p := range old.partitions {
		p.close()
	}
	m.current.Store(&snapshot{img: old.img, partitions: map[storage.TopicPartition]*Partition{}, closed: true})
	m.isrCancel()
	m.isrWG.Wait()
	return nil
}
