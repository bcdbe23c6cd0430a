package kafka

// Fetch sessions (KIP-227, incremental fetch), used by 01_fetch.go.
//
// A fetch names a session by (SessionID, SessionEpoch), Fetch v7+:
//
//   - (0, -1): a sessionless full fetch (FINAL_EPOCH); the answer's
//     SessionID is 0. (id, -1) with id != 0 also closes session id first.
//   - (0, 0): a full fetch that creates a session; the answer carries its
//     new SessionID (0 when the cache has no room: the client stays
//     sessionless). (id, 0) closes session id first.
//   - (id, n > 0): an incremental fetch of session id. Unknown id:
//     FETCH_SESSION_ID_NOT_FOUND; n not the session's next epoch (one more
//     than the last request's, wrapping to 1 after MaxInt32):
//     INVALID_FETCH_SESSION_EPOCH; topic ids used (v13+) by a session
//     created without them or the other way round:
//     FETCH_SESSION_TOPIC_ID_ERROR. The request names only partitions that
//     are new to the session or whose fetch parameters changed, and
//     ForgottenTopics drops partitions from it; the fetch covers every
//     partition of the session.
//
// The answer to a full fetch holds every partition; the answer to an
// incremental fetch holds only the partitions with records, an error, a
// diverging epoch, or a high watermark, log start or last stable offset
// other than the one this session last sent. Partitions are read in the
// session's order, and those that answered records move to its end, so
// that none starves under the response size limit.
//
// Idle partitions cost nothing per fetch: a session re-reads a partition
// only when the request names it, when its state changed since the
// session's last read of it (partition.Changes), or when that read returned
// records or an error or was cut by the size limit (it may answer again),
// or found the fetching follower outside the ISR (its expansion may need
// another try with nothing changed on the partition).
// A session parks on one channel registered once with each of its
// partitions (partition.AddWaker), not per fetch; a follower's session
// also registers it for the fetch with partition.WatchFollower, which
// answers the fetch when the follower must add a partition to it. A follower's session
// keeps the leader's view of the follower caught up without touching
// skipped partitions (partition.SessionClock).
//
// The cache holds at most Slots sessions (max.incremental.fetch.session.
// cache.slots). When full, a new session takes the slot of the least
// recently used one if that one has been idle for EvictAfter
// (min.incremental.fetch.session.eviction.ms), or, for a follower's
// session, the least recently used consumer session (followers are
// privileged, as in Kafka); otherwise it is not created. Sessions idle for
// EvictAfter are also dropped whenever a session is created.

import (
	"container/list"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/skein-io/skein/dataplane/partition"
)

// Kafka's defaults for the fetch session cache.
const (
	// DefaultFetchSessionSlots is max.incremental.fetch.session.cache.slots.
	DefaultFetchSessionSlots = 1000
	// DefaultFetchSessionEvictAfter is
	// min.incremental.fetch.session.eviction.ms.
	DefaultFetchSessionEvictAfter = 120 * time.Second
)

// Session epochs with a meaning (KIP-227).
const (
	initialSessionEpoch int32 = 0
	finalSessionEpoch   int32 = -1
)

// nextSessionEpoch is the epoch that follows e: one more, wrapping from
// MaxInt32 to 1 (0 and -1 are never incremental epochs).
func nextSessionEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// FetchSessionCache holds the broker's fetch sessions. Safe for concurrent
// use; each session serves one request at a time.
type FetchSessionCache struct {
	slots      int
	evictAfter time.Duration
	now        func() time.Time

	mu       sync.Mutex
	sessions map[int32]*fetchSession
	// lru orders sessions by last use, least recent at the front.
	lru *list.List
}

// NewFetchSessionCache returns a cache of at most slots sessions (0: no
// sessions, every fetch is sessionless) that may evict a session idle for
// evictAfter; now nil means time.Now.
func NewFetchSessionCache(slots int, evictAfter time.Duration, now func() time.Time) *FetchSessionCache {
	if now == nil {
		now = time.Now
	}
	return &FetchSessionCache{slots: max(slots, 0), evictAfter: evictAfter, now: now,
		sessions: map[int32]*fetchSession{}, lru: list.New()}
}

// Len is the number of sessions cached.
func (c *FetchSessionCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}

// fetchSession is one session. Fields under mu belong to the request
// being served; lastUsed and elem to the cache's mu.
type fetchSession struct {
	id       int32
	follower bool // created by a follower's fetch (ReplicaID >= 0)
	topicIDs bool // created by a v13+ fetch

	// wake gets a signal on any change of a session partition.
	wake chan struct{}
	// clock is the start of the latest fetch (a follower's caught-up time
	// for the partitions skipped, partition.SessionClock).
	clock partition.SessionClock

	mu sync.Mutex
	// epoch is the epoch the next incremental request must carry.
	epoch int32
	parts []*sessionPartition
	index map[sessionKey]*sessionPartition
	// removed: the session left the cache; whoever holds mu then
	// unregisters the wakers.
	removed atomic.Bool

	lastUsed time.Time
	elem     *list.Element
}

// sessionKey names a session partition: by topic id from v13, by name
// before.
type sessionKey struct {
	topicID   [16]byte
	topic     string
	partition int32
}

// sessionPartition is one partition of a session: the client's fetch
// parameters, what the session last read and sent.
type sessionPartition struct {
	key                sessionKey
	fetchOffset        int64
	maxBytes           int32
	currentLeaderEpoch int32
	lastFetchedEpoch   int32
	// followerLogStart is a follower's reported log start (-1: none).
	followerLogStart int64

	// p is the partition watched (AddWaker); nil when it did not resolve.
	p *partition.Partition
	// changes is p.Changes() before the last read.
	changes uint64
	// stale: read again on the next fetch (new or changed parameters; the
	// last read returned records or an error, was cut by the size limit, or
	// found the follower outside the ISR).
	stale bool
	// sent: an answer was sent; hw, logStart and lso are its values.
	sent              bool
	hw, logStart, lso int64
	// moved marks the partitions rotate moves back (only during rotate).
	moved bool
}

// create makes a new session, locked (the caller fills it and unlocks it,
// as after acquire), or returns nil when there is no room. follower is the
// requester's kind, topicIDs whether it names topics by id.
func (c *FetchSessionCache) create(follower, topicIDs bool) *fetchSession {
	if c.slots == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.evictIdleLocked(now)
	if len(c.sessions) >= c.slots && !c.evictForLocked(follower) {
		return nil
	}
	s := &fetchSession{id: c.newIDLocked(), follower: follower, topicIDs: topicIDs,
		wake: make(chan struct{}, 1), epoch: 1, index: map[sessionKey]*sessionPartition{}}
	s.mu.Lock()
	s.lastUsed = now
	s.elem = c.lru.PushBack(s)
	c.sessions[s.id] = s
	return s
}

// newIDLocked picks an unused nonzero session id.
func (c *FetchSessionCache) newIDLocked() int32 {
	for {
		id := rand.Int32N(math.MaxInt32) + 1 // 1..MaxInt32
		if c.sessions[id] == nil {
			return id
		}
	}
}

// evictIdleLocked drops the sessions idle for evictAfter.
func (c *FetchSessionCache) evictIdleLocked(now time.Time) {
	for e := c.lru.Front(); e != nil; {
		s := e.Value.(*fetchSession)
		if now.Sub(s.lastUsed) < c.evictAfter {
			return
		}
		e = e.Next()
		c.removeLocked(s)
	}
}

// evictForLocked frees a slot for a new session of a follower (any consumer
// session may go, least recently used first) or a consumer (none: only
// idle ones go, and evictIdleLocked already took those).
func (c *FetchSessionCache) evictForLocked(follower bool) bool {
	if !follower {
		return false
	}
	for e := c.lru.Front(); e != nil; e = e.Next() {
		if s := e.Value.(*fetchSession); !s.follower {
			c.removeLocked(s)
			return true
		}
	}
	return false
}

// removeLocked takes s out of the cache. Its wakers are unregistered now
// when no request holds it, else by the holder (unlock).
func (c *FetchSessionCache) removeLocked(s *fetchSession) {
	delete(c.sessions, s.id)
	c.lru.Remove(s.elem)
	s.removed.Store(true)
	if s.mu.TryLock() {
		s.unwatchLocked()
		s.mu.Unlock()
	}
}

// remove closes session id (a request with epoch -1 or 0 naming it).
func (c *FetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[id]; s != nil {
		c.removeLocked(s)
	}
}

// acquire returns session id locked for one incremental request with
// epoch, and moves its epoch on; errors: FETCH_SESSION_ID_NOT_FOUND,
// INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR. The caller
// unlocks it when done.
func (c *FetchSessionCache) acquire(id, epoch int32, topicIDs bool) (*fetchSession, *kerr.Error) {
	c.mu.Lock()
	s := c.sessions[id]
	if s == nil {
		c.mu.Unlock()
		return nil, kerr.FetchSessionIDNotFound
	}
	s.lastUsed = c.now()
	c.lru.MoveToBack(s.elem)
	c.mu.Unlock()
	s.mu.Lock()
	var err *kerr.Error
	switch {
	case s.removed.Load():
		s.unwatchLocked()
		err = kerr.FetchSessionIDNotFound
	case epoch != s.epoch:
		err = kerr.InvalidFetchSessionEpoch
	case topicIDs != s.topicIDs:
		err = kerr.FetchSessionTopicIDError
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.epoch = nextSessionEpoch(epoch)
	return s, nil
}

// unlock ends a request's use of s; the last holder of a session that
// left the cache meanwhile unregisters its wakers.
func (s *fetchSession) unlock() {
	s.mu.Unlock()
	if s.removed.Load() && s.mu.TryLock() {
		s.unwatchLocked()
		s.mu.Unlock()
	}
}

// unwatchLocked unregisters the session's wakers. Caller holds s.mu.
func (s *fetchSession) unwatchLocked() {
	for _, sp := range s.parts {
		s.watch(sp, nil)
	}
}

// wakeOn is what the session's parked fetches wait for (fetchWakeOn).
func (s *fetchSession) wakeOn() partition.Event {
	if s.follower {
		return partition.WakeFollowerFetch
	}
	return partition.WakeConsumerFetch
}

// watch makes p the partition sp watches (nil: none).
func (s *fetchSession) watch(sp *sessionPartition, p *partition.Partition) {
	if sp.p == p {
		return
	}
	if sp.p != nil {
		sp.p.RemoveWaker(s.wake)
	}
	sp.p = p
	if p != nil {
		p.AddWaker(s.wake, s.wakeOn())
	}
}

// upsert adds or updates a partition named by a request; it will be read
// on this fetch. Caller holds s.mu.
func (s *fetchSession) upsert(k sessionKey, fetchOffset, followerLogStart int64, maxBytes, currentLeaderEpoch, lastFetchedEpoch int32) *sessionPartition {
	sp := s.index[k]
	if sp == nil {
		sp = &sessionPartition{key: k}
		s.index[k] = sp
		s.parts = append(s.parts, sp)
	}
	sp.fetchOffset, sp.maxBytes = fetchOffset, maxBytes
	sp.currentLeaderEpoch, sp.lastFetchedEpoch = currentLeaderEpoch, lastFetchedEpoch
	sp.followerLogStart = followerLogStart
	sp.stale = true
	return sp
}

// forget drops a partition from the session. Caller holds s.mu.
func (s *fetchSession) forget(k sessionKey) {
	sp := s.index[k]
	if sp == nil {
		return
	}
	s.watch(sp, nil)
	delete(s.index, k)
	for i, q := range s.parts {
		if q == sp {
			s.parts = append(s.parts[:i], s.parts[i+1:]...)
			break
		}
	}
}

// mustRead says whether the session reads sp on this fetch: it is stale,
// never resolved, or its partition changed since the last read.
func (sp *sessionPartition) mustRead() bool {
	return sp.stale || sp.p == nil || sp.p.Changes() != sp.changes
}

// mustSend says whether an incremental answer includes sp with these
// values, and records them as sent when it does.
func (sp *sessionPartition) mustSend(errorCode int16, records int64, diverging bool, hw, logStart, lso int64) bool {
	if errorCode == 0 && records == 0 && !diverging && sp.sent && hw == sp.hw && logStart == sp.logStart && lso == sp.lso {
		return false
	}
	sp.markSent(hw, logStart, lso)
	return true
}

func (sp *sessionPartition) markSent(hw, logStart, lso int64) {
	sp.sent, sp.hw, sp.logStart, sp.lso = true, hw, logStart, lso
}
