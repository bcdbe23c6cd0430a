package partition

// Follower fetches parked at this leader, by follower (issue 13).
//
// A follower's fetch parks on the partitions it names (or, in a fetch
// session, all of its session's partitions). When this broker becomes
// leader of a partition (a new leader epoch), or a partition it leads
// gains replicas, its followers must add it to their fetch from here; a
// follower whose fetch is parked here on other partitions would only do so
// once that fetch answers, after up to the replica fetch max wait. So:
//
//   - ApplyImage tells the followers' parked fetches (WatchFollower) to
//     answer now, once the image is published (a woken follower's next
//     fetch finds the partition). The cost is the parked fetches of those
//     followers: they are indexed by replica id.
//   - The follower may learn of the partition after this leader (its
//     metadata a few ms behind): its next fetch does not name the
//     partition yet. So for a while after such a change a follower's fetch
//     parks only briefly: no longer than the time since the change (at
//     least minFollowerPark). The follower fetches again at growing
//     intervals and adds the partition within about twice its metadata lag;
//     once the change is older than the fetch's own max wait, nothing is
//     capped any more. A follower that never follows (down, failing) costs
//     nothing more than a few early answers.

import (
	"slices"
	"sync"
	"time"
)

// minFollowerPark is the shortest park of a follower's fetch right after a
// change it must follow (FollowerWatch.Deadline), so that the follower's
// fetches right after it do not spin.
const minFollowerPark = 2 * time.Millisecond

// followerWaits indexes parked follower fetches by replica id.
type followerWaits struct {
	now func() time.Time

	mu       sync.Mutex
	replicas map[int32]*replicaWaits
}

// replicaWaits is one follower's state: the changes it must follow
// (counted, with the time of the latest) and its parked fetches.
type replicaWaits struct {
	gen    uint64
	at     time.Time
	parked map[chan struct{}]struct{}
}

func newFollowerWaits(now func() time.Time) *followerWaits {
	return &followerWaits{now: now, replicas: map[int32]*replicaWaits{}}
}

// replicaLocked returns replica's state, created empty. Caller holds mu.
func (fw *followerWaits) replicaLocked(replica int32) *replicaWaits {
	rw := fw.replicas[replica]
	if rw == nil {
		rw = &replicaWaits{parked: map[chan struct{}]struct{}{}}
		fw.replicas[replica] = rw
	}
	return rw
}

// changed records that each of replicas must now fetch a partition from
// here, and wakes their parked fetches.
func (fw *followerWaits) changed(replicas []int32) {
	now := fw.now()
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, r := range replicas {
		rw := fw.replicaLocked(r)
		rw.gen++
		rw.at = now
		for ch := range rw.parked {
			select {
			case ch <- struct{}{}:
			default: // a signal is already pending
			}
		}
	}
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
	at      time.Time
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
	rw.parked[wake] = struct{}{}
	return &FollowerWatch{fw: fw, replica: replica, ch: wake, gen: rw.gen, at: rw.at}
}

// WatchFollowerWaiter is WatchFollower for a fetch parked on w.
func (m *Manager) WatchFollowerWaiter(replica int32, w *Waiter) *FollowerWatch {
	return m.WatchFollower(replica, w.ch)
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
// would wait until deadline: sooner while the last change the follower
// must follow is recent (no later than the time since that change from
// now, at least minFollowerPark).
func (w *FollowerWatch) Deadline(deadline time.Time) time.Time {
	if w.at.IsZero() {
		return deadline
	}
	now := w.fw.now()
	park := max(now.Sub(w.at), minFollowerPark)
	if capped := now.Add(park); capped.Before(deadline) {
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
	delete(w.fw.replicas[w.replica].parked, w.ch)
	w.fw.mu.Unlock()
	w.ch = nil
}

// newFollowers returns the followers that must start fetching p from here
// after an image took it from (oldRole, oldEpoch, oldReplicas) to its
// current role: every follower when it became leader or its leader epoch
// moved, the replicas it gained otherwise; none when it does not lead.
// Caller holds roleMu.
func (p *Partition) newFollowers(oldRole Role, oldEpoch int32, oldReplicas []int32) []int32 {
	if p.role != RoleLeader {
		return nil
	}
	fresh := oldRole != RoleLeader || oldEpoch != p.leaderEpoch
	var out []int32
	for _, r := range p.replicas {
		if r != p.nodeID && (fresh || !slices.Contains(oldReplicas, r)) {
			out = append(out, r)
		}
	}
	return out
}
