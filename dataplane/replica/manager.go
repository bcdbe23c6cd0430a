package replica

import (
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
	return m, nil
}

// Update makes the fetchers match followers, the full set of partitions
// this broker follows: new leaders get a fetcher, fetchers of brokers that
// lead nothing here any more stop, and each fetcher's partitions are
// replaced. A partition whose leader epoch changed restarts its fetch state
// (the next fetch sends its new position and last epoch, and the leader
// answers any divergence). Update does not wait for the network.
func (m *Manager) Update(followers []partition.Follower) {
	byLeader := map[int32]map[storage.TopicPartition]partition.Follower{}
	addrs := map[int32]string{}
	for _, f := range followers {
		if f.Partition == nil || f.LeaderAddr == "" {
			continue
		}
		parts := byLeader[f.LeaderID]
		if parts == nil {
			parts = map[storage.TopicPartition]partition.Follower{}
			byLeader[f.LeaderID] = parts
			addrs[f.LeaderID] = f.LeaderAddr
		}
		parts[storage.TopicPartition{Topic: f.Partition.Topic(), Partition: f.Partition.Index()}] = f
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return
	}
	for id, fe := range m.mu.fetchers {
		if parts, ok := byLeader[id]; !ok || addrs[id] != fe.addr {
			m.stopLocked(id, fe)
			continue
		} else {
			fe.setPartitions(parts)
		}
	}
	for id, parts := range byLeader {
		if m.mu.fetchers[id] != nil {
			continue
		}
		fe, err := newFetcher(m.cfg, id, addrs[id])
		if err != nil {
			m.cfg.Logger.Error("cannot start replica fetcher", "leader", id, "address", addrs[id], "error", err)
			continue
		}
		fe.setPartitions(parts)
		m.mu.fetchers[id] = fe
		fe.start()
		m.cfg.Logger.Info("replica fetcher started", "leader", id, "address", addrs[id], "partitions", len(parts))
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

// Close stops every fetcher and waits for them. Idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if !m.mu.closed {
		m.mu.closed = true
		for id, fe := range m.mu.fetchers {
			m.stopLocked(id, fe)
		}
	}
	m.mu.Unlock()
	m.stopping.Wait()
	return nil
}
