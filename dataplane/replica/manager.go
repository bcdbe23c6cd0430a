package replica

import (
	"maps"
	"slices"
	"sync"

	"github.com/skein-io/skein/dataplane/partition"
	"github.com/skein-io/skein/storage"
)

// Manager runs one fetcher per leader broker this broker follows.
//
// Update and Close may be called from any goroutine; Update is normally
// called from the image-apply goroutine only.
type Manager struct {
	cfg Config

	mu struct {
		sync.Mutex
		closed bool
		// fetchers by leader broker id; a fetcher dials one address, so a
		// leader that moved gets a new fetcher.
		fetchers map[int32]*fetcher
		// leaderOf is the leader each followed partition is fetched from.
		leaderOf map[storage.TopicPartition]int32
	}
	// stopping tracks fetchers being stopped (Close waits for them).
	stopping sync.WaitGroup
}

// New returns a manager with no fetchers.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Logger = cfg.Logger.Named("replica-fetcher")
	m := &Manager{cfg: cfg}
	m.mu.fetchers = map[int32]*fetcher{}
	m.mu.leaderOf = map[storage.TopicPartition]int32{}
	return m, nil
}

// Update applies one image's changes to what this broker follows
// (partition.Config.OnFollowers): only the fetchers of the leaders named
// in the changes are touched. A partition now followed from a leader gets
// that leader's fetcher (started on first use); one whose leader, leader
// epoch or replica changed restarts its fetch state (the next fetch sends
// its new position and last epoch, and the leader answers any
// divergence); a fetcher left with nothing to fetch stops; a leader whose
// address changed gets a new fetcher, which takes over its partitions. A
// follower whose leader has no address is not fetched. Update does not
// wait for the network.
func (m *Manager) Update(ch partition.FollowerChanges) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return
	}
	// The changes, by the fetcher (leader) they touch.
	type edit struct {
		set     map[storage.TopicPartition]partition.Follower
		removed []storage.TopicPartition
	}
	edits := map[int32]*edit{}
	editOf := func(id int32) *edit {
		e := edits[id]
		if e == nil {
			e = &edit{set: map[storage.TopicPartition]partition.Follower{}}
			edits[id] = e
		}
		return e
	}
	unfollow := func(tp storage.TopicPartition) {
		if id, ok := m.mu.leaderOf[tp]; ok {
			delete(m.mu.leaderOf, tp)
			e := editOf(id)
			delete(e.set, tp)
			e.removed = append(e.removed, tp)
		}
	}
	for _, tp := range ch.Unfollowed {
		unfollow(tp)
	}
	addrs := map[int32]string{}
	for _, f := range ch.Followed {
		if f.Partition == nil {
			continue
		}
		tp := storage.TopicPartition{Topic: f.Partition.Topic(), Partition: f.Partition.Index()}
		if id, ok := m.mu.leaderOf[tp]; ok && (id != f.LeaderID || f.LeaderAddr == "") {
			unfollow(tp)
		}
		if f.LeaderAddr == "" {
			continue
		}
		m.mu.leaderOf[tp] = f.LeaderID
		editOf(f.LeaderID).set[tp] = f
		addrs[f.LeaderID] = f.LeaderAddr
	}

	for _, id := range slices.Sorted(maps.Keys(edits)) {
		e := edits[id]
		fe := m.mu.fetchers[id]
		if fe != nil && addrs[id] != "" && addrs[id] != fe.addr {
			// The leader moved: a fetcher dials one address.
			for tp, fl := range fe.followers() {
				if _, ok := e.set[tp]; !ok && !slices.Contains(e.removed, tp) {
					fl.LeaderAddr = addrs[id]
					e.set[tp] = fl
				}
			}
			m.stopLocked(id, fe)
			fe = nil
		}
		if fe == nil {
			if len(e.set) == 0 {
				continue
			}
			var err error
			if fe, err = newFetcher(m.cfg, id, addrs[id]); err != nil {
				m.cfg.Logger.Error("cannot start replica fetcher", "leader", id, "address", addrs[id], "error", err)
				for tp := range e.set {
					delete(m.mu.leaderOf, tp)
				}
				continue
			}
			fe.update(e.set, nil)
			m.mu.fetchers[id] = fe
			fe.start()
			m.cfg.Logger.Info("replica fetcher started", "leader", id, "address", addrs[id], "partitions", len(e.set))
			continue
		}
		if fe.update(e.set, e.removed) == 0 {
			m.stopLocked(id, fe)
		}
	}
}

// stopLocked removes a fetcher and stops it in the background: its writes
// are already refused (the partitions moved to a new epoch or left), so
// nothing waits for it but Close. Caller holds m.mu.
func (m *Manager) stopLocked(id int32, fe *fetcher) {
	delete(m.mu.fetchers, id)
	m.stopping.Add(1)
	go func() {
		defer m.stopping.Done()
		fe.stop()
		m.cfg.Logger.Info("replica fetcher stopped", "leader", id, "address", fe.addr)
	}()
}

// Leaders returns the ids of the leaders being fetched from (for tests and
// metrics).
func (m *Manager) Leaders() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int32, 0, len(m.mu.fetchers))
	for id := range m.mu.fetchers {
		out = append(out, id)
	}
	return out
}

// FetcherStats is one fetcher's state, for metrics.
type FetcherStats struct {
	// Leader is the broker fetched from.
	Leader int32
	// Partitions is how many partitions it follows from that leader.
	Partitions int
	// MaxLag is the largest number of records a followed partition's log
	// end was behind the leader's high watermark after its last answer.
	MaxLag int64
}

// Fetchers returns the state of every running fetcher.
func (m *Manager) Fetchers() []FetcherStats {
	m.mu.Lock()
	fetchers := maps.Clone(m.mu.fetchers)
	m.mu.Unlock()
	out := make([]FetcherStats, 0, len(fetchers))
	for id, fe := range fetchers {
		n, lag := fe.stats()
		out = append(out, FetcherStats{Leader: id, Partitions: n, MaxLag: lag})
	}
	return out
}

// Close stops every fetcher and waits for them. Idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if !m.mu.closed {
		m.mu.closed = true
		for id, fe := range m.mu.fetchers {
			m.stopLocked(id, fe)
		}
		clear(m.mu.leaderOf)
	}
	m.mu.Unlock()
	m.stopping.Wait()
	return nil
}
