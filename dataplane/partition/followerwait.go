package partition

// Follower fetches parked at this leader, by follower (issue 13).
//
// A follower's fetch parks on the partitions it names (or, in a fetch
// session, all of its session's partitions). When this broker becomes
// leader of a partition (or starts a new leader epoch), or a partition it
// leads gains replicas, the followers must add it to their fetch from
// here: the partition awaits them until each has read it (Read with its
// replica id and the current epoch). A follower whose fetch is parked here
// on other partitions would only add it once that fetch answers, after up
// to the replica fetch max wait. So:
//
//   - ApplyImage, once the image is published (so that a woken follower's
//     next fetch finds the partition), answers the parked fetches of the
//     followers it made awaited (FollowerWatch.Due). The cost is those
//     followers' fetches: they are indexed by replica id.
//   - The follower may learn of the partition after this leader does (its
//     metadata a few ms behind): its next fetch does not name the partition
//     yet. While a partition awaits a follower, that follower's fetches
//     park no longer than the time since the latest change it must follow
//     (at least minFollowerPark; FollowerWatch.Deadline). It fetches again
//     at growing intervals and adds the partition within about twice its
//     metadata lag; once it has read every partition awaiting it, or the
//     change is older than the fetch's own max wait, nothing is shortened.
//     A follower that never reads the partition (down, failing) costs a
//     few early answers per change.

import (
	"slices"
	"sync"
	"time"
)

// minFollowerPark is the shortest park of a follower's fetch right after a
// change it must follow (FollowerWatch.Deadline), so that the follower's
// fetches right after it do not spin.
const minFollowerPark = 2 * time.Millisecond

// followerWaits is the manager's state of the followers: the partitions
// awaiting each, and their fetches being served.
type followerWaits struct {
	// now is the manager's clock, which times the changes; wall is the
	// clock of fetch deadlines (time.Now).
	now, wall func() time.Time

	mu       sync.Mutex
	replicas map[int32]*replicaWaits
}

// replicaWaits is one follower's state: the changes it must follow
// (counted, with the time of the latest), how many partitions await it,
// and the wake channels of its fetches being served.
type replicaWaits struct {
	gen     uint64
	at      time.Time
	awaited int
	fetches map[chan struct{}]struct{}
}

func newFollowerWaits(now func() time.Time) *followerWaits {
	return &followerWaits{now: now, wall: time.Now, replicas: map[int32]*replicaWaits{}}
}

// replicaLocked returns replica's state, created empty. Caller holds mu.
func (fw *followerWaits) replicaLocked(replica int32) *replicaWaits {
	rw := fw.replicas[replica]
	if rw == nil {
		rw = &replicaWaits{fetches: map[chan struct{}]struct{}{}}
		fw.replicas[replica] = rw
	}
	return rw
}

// changed records that each of replicas must now fetch a partition from
// here, and wakes their fetches.
func (fw *followerWaits) changed(replicas []int32) {
	now := fw.now()
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, r := range replicas {
		rw := fw.replicaLocked(r)
		rw.gen++
		rw.at = now
		for ch := range rw.fetches {
			select {
			case ch <- struct{}{}:
			default: // a signal is already pending
			}
		}
	}
}

// awaiting counts a partition's change of awaited followers from old to
// next.
func (fw *followerWaits) awaiting(old, next []int32) {
	if fw == nil {
		return
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, r := range old {
		if !slices.Contains(next, r) {
			fw.replicaLocked(r).awaited--
		}
	}
	for _, r := range next {
		if !slices.Contains(old, r) {
			fw.replicaLocked(r).awaited++
		}
	}
}

// awaitFollowers sets the followers the partition awaits after an image
// (Caller holds roleMu for writing): due are the followers that must now
// start fetching it (newFollowers); those already awaited stay so while
// they remain replicas under the same leader epoch (fresh: a new role or
// epoch, none stay). A partition that is not led here awaits none.
func (p *Partition) awaitFollowers(fresh bool, due []int32) {
	p.mu.Lock()
	old := p.mu.awaiting
	var next []int32
	if p.role == RoleLeader {
		if !fresh {
			for _, r := range old {
				if slices.Contains(p.replicas, r) {
					next = append(next, r)
				}
			}
		}
		for _, r := range due {
			if !slices.Contains(next, r) {
				next = append(next, r)
			}
		}
	}
	p.mu.awaiting = next
	p.awaited.Store(len(next) > 0)
	p.mu.Unlock()
	p.followers.awaiting(old, next)
}

// followerRead records that follower replica read the partition under the
// current leader epoch: it no longer awaits it. Caller holds roleMu.
func (p *Partition) followerRead(replica int32) {
	if !p.awaited.Load() {
		return
	}
	p.mu.Lock()
	old := p.mu.awaiting
	if !slices.Contains(old, replica) {
		p.mu.Unlock()
		return
	}
	// A new slice: awaitFollowers reads the old one outside the lock.
	next := make([]int32, 0, len(old)-1)
	for _, r := range old {
		if r != replica {
			next = append(next, r)
		}
	}
	p.mu.awaiting = next
	p.awaited.Store(len(next) > 0)
	p.mu.Unlock()
	p.followers.awaiting(old, next)
}

// FollowerWatch is one follower fetch's view of the changes its follower
// must follow (see the top of followerwait.go): from WatchFollower until
// Close, such a change signals the fetch's wake channel, and Due reports
// it. A FollowerWatch belongs to one request.
type FollowerWatch struct {
	fw      *followerWaits
	replica int32
	ch      chan struct{}
	gen     uint64
}

// WatchFollower starts watching for changes follower replica must follow
// on behalf of one of its fetches, which parks on wake (a channel with a
// buffer of 1, as Waiter's and a fetch session's): such a change sends it
// a signal. Close it when the fetch is answered.
func (m *Manager) WatchFollower(replica int32, wake chan struct{}) *FollowerWatch {
	fw := m.followers
	fw.mu.Lock()
	defer fw.mu.Unlock()
	rw := fw.replicaLocked(replica)
	rw.fetches[wake] = struct{}{}
	return &FollowerWatch{fw: fw, replica: replica, ch: wake, gen: rw.gen}
}

// WatchFollowerWaiter is WatchFollower for a fetch parked on w.
func (m *Manager) WatchFollowerWaiter(replica int32, w *Waiter) *FollowerWatch {
	return m.WatchFollower(replica, w.ch)
}

// FollowerFetchesWatching is the number of fetches of follower replica
// being served with a FollowerWatch, for metrics and tests.
func (m *Manager) FollowerFetchesWatching(replica int32) int {
	fw := m.followers
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if rw := fw.replicas[replica]; rw != nil {
		return len(rw.fetches)
	}
	return 0
}

// AwaitedBy is the number of partitions led here that follower replica
// must start fetching and has not read yet, for metrics and tests.
func (m *Manager) AwaitedBy(replica int32) int {
	fw := m.followers
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if rw := fw.replicas[replica]; rw != nil {
		return rw.awaited
	}
	return 0
}

// Due says whether the follower must follow a change made since the watch
// began: its fetch should answer now, so that the next one adds the
// partition.
func (w *FollowerWatch) Due() bool {
	w.fw.mu.Lock()
	defer w.fw.mu.Unlock()
	return w.fw.replicas[w.replica].gen != w.gen
}

// Deadline is when the fetch should answer at the latest, given that it
// would wait until deadline: sooner while a partition awaits the follower
// and the latest change it must follow is recent (no later than the time
// since that change from now, at least minFollowerPark).
func (w *FollowerWatch) Deadline(deadline time.Time) time.Time {
	w.fw.mu.Lock()
	rw := w.fw.replicas[w.replica]
	at, awaited := rw.at, rw.awaited
	w.fw.mu.Unlock()
	if awaited <= 0 || at.IsZero() {
		return deadline
	}
	park := max(w.fw.now().Sub(at), minFollowerPark)
	if capped := w.fw.wall().Add(park); capped.Before(deadline) {
		return capped
	}
	return deadline
}

// Close ends the watch. Idempotent.
func (w *FollowerWatch) Close() {
	if w == nil || w.ch == nil {
		return
	}
	w.fw.mu.Lock()
	delete(w.fw.replicas[w.replica].fetches, w.ch)
	w.fw.mu.Unlock()
	w.ch = nil
}

// newFollowers returns the followers that must start fetching p from here
// after an image took it from (oldRole, oldEpoch, oldReplicas) to its
// current role: every follower when it became leader or its leader epoch
// moved (fresh), the replicas it gained otherwise; none when it does not
// lead. Caller holds roleMu.
func (p *Partition) newFollowers(oldRole Role, oldEpoch int32, oldReplicas []int32) (due []int32, fresh bool) {
	if p.role != RoleLeader {
		return nil, true
	}
	fresh = oldRole != RoleLeader || oldEpoch != p.leaderEpoch
	for _, r := range p.replicas {
		if r != p.nodeID && (fresh || !slices.Contains(oldReplicas, r)) {
			due = append(due, r)
		}
	}
	return due, fresh
}
