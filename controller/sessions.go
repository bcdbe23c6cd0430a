package controller

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/skein-io/skein/controller/image"
)

// leaderState is what the active controller keeps in memory for one
// leadership term, beside the replicated image: broker session deadlines and
// controlled shutdowns. A new term starts it afresh, so a failover gives every
// broker a full session timeout before it can be fenced.
type leaderState struct {
	// term is the Raft term this state belongs to, set before the state is
	// published and never changed; every entry it proposes carries it.
	term   uint64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// kick wakes the session loop when a deadline may have moved earlier
	// (a broker registered or was unfenced).
	kick chan struct{}

	mu struct {
		sync.Mutex
		lastHeartbeat map[int32]time.Time // protected by mu
		shuttingDown  map[int32]bool      // protected by mu
	}
}

func newLeaderState(parent context.Context) *leaderState {
	ls := &leaderState{kick: make(chan struct{}, 1)}
	ls.ctx, ls.cancel = context.WithCancel(parent)
	ls.mu.lastHeartbeat = map[int32]time.Time{}
	ls.mu.shuttingDown = map[int32]bool{}
	return ls
}

func (ls *leaderState) goTracked(fn func()) {
	ls.wg.Add(1)
	go func() {
		defer ls.wg.Done()
		fn()
	}()
}

// stop ends the term and waits for its goroutines.
func (ls *leaderState) stop() {
	ls.cancel()
	ls.wg.Wait()
}

func (ls *leaderState) wake() {
	select {
	case ls.kick <- struct{}{}:
	default:
	}
}

func (ls *leaderState) resetSessions(img *image.Image, now time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for id := range img.Brokers {
		ls.mu.lastHeartbeat[id] = now
	}
}

func (ls *leaderState) touch(id int32, now time.Time) {
	ls.mu.Lock()
	ls.mu.lastHeartbeat[id] = now
	ls.mu.Unlock()
}

func (ls *leaderState) setShuttingDown(id int32, v bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if v {
		ls.mu.shuttingDown[id] = true
	} else {
		delete(ls.mu.shuttingDown, id)
	}
}

// live returns the liveness predicate of img for elections: unfenced and not
// in controlled shutdown, minus except.
func (ls *leaderState) live(img *image.Image, except int32) isLive {
	ls.mu.Lock()
	down := make(map[int32]bool, len(ls.mu.shuttingDown))
	for id := range ls.mu.shuttingDown {
		down[id] = true
	}
	ls.mu.Unlock()
	return func(id int32) bool {
		b := img.Brokers[id]
		return id != except && b != nil && !b.Fenced && !down[id]
	}
}

// expired returns the unfenced brokers of img whose session ended at now,
// and the earliest future deadline among the others (zero if none).
func (ls *leaderState) expired(img *image.Image, now time.Time, timeout time.Duration) (ids []int32, next time.Time) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, id := range img.BrokerIDs() {
		if img.Brokers[id].Fenced {
			continue
		}
		last, ok := ls.mu.lastHeartbeat[id]
		if !ok {
			last = now
			ls.mu.lastHeartbeat[id] = now
		}
		deadline := last.Add(timeout)
		if !now.Before(deadline) {
			ids = append(ids, id)
		} else if next.IsZero() || deadline.Before(next) {
			next = deadline
		}
	}
	return ids, next
}

// runSessions fences brokers whose session timed out, for as long as the
// term lasts. It sleeps until the earliest deadline; heartbeats only move
// deadlines later, and registrations and unfences wake it.
func (c *Controller) runSessions(ls *leaderState) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := c.fenceExpired(ls)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(c.now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ls.ctx.Done():
			return
		case <-ls.kick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// fenceExpired fences every broker whose session timed out, one entry per
// broker (the fence and the elections it causes), and returns the next
// deadline to check.
func (c *Controller) fenceExpired(ls *leaderState) time.Time {
	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	for {
		if ls.ctx.Err() != nil {
			return time.Time{}
		}
		img := c.fsm.current()
		ids, next := ls.expired(img, c.now(), c.cfg.SessionTimeout)
		if len(ids) == 0 {
			return next
		}
		id := ids[0]
		b := img.Brokers[id]
		recs := c.fenceRecords(img, ls, b)
		if _, err := c.propose(ls, recs); err != nil {
			c.log.Warn("could not fence broker after session timeout", "broker", id, "error", err)
			return c.now().Add(100 * time.Millisecond)
		}
		c.log.Info("broker fenced: session timed out", "broker", id, "epoch", b.Epoch,
			"session_timeout", c.cfg.SessionTimeout, "partition_changes", len(recs)-1)
		c.logElections(img, recs)
	}
}

// fenceRecords is the decision to fence broker b: the FenceBroker record and
// the partition changes it causes.
func (c *Controller) fenceRecords(img *image.Image, ls *leaderState, b *image.Broker) []record {
	recs := []record{{Type: typeFenceBroker, FenceBroker: &brokerEpochRecord{ID: b.ID, Epoch: b.Epoch}}}
	return append(recs, fenceDecision(img, b.ID, ls.live(img, b.ID))...)
}

// logElections logs every leader change among recs, against before (the
// image the decision was computed from) and the image they were applied to
// (the current one). An election of a replica that was in neither the ISR
// nor the ELR is logged as unclean, at warning level: records may have been
// lost.
func (c *Controller) logElections(before *image.Image, recs []record) {
	img := c.fsm.current()
	c.logMoves(before, img, recs, "election") // a reassignment an election's ISR completed
	for _, r := range recs {
		x := r.ChangePartition
		if x == nil || x.Leader == nil {
			continue
		}
		t := img.TopicByID(x.TopicID)
		if t == nil || int(x.Partition) >= len(t.Partitions) {
			continue
		}
		p := t.Partitions[x.Partition]
		var old *image.Partition
		if bt := before.TopicByID(x.TopicID); bt != nil && int(x.Partition) < len(bt.Partitions) {
			old = bt.Partitions[x.Partition]
		}
		switch {
		case p.Leader == -1:
			c.log.Info("partition offline: no live in-sync or eligible replica", "topic", t.Name, "partition", p.Partition,
				"isr", p.ISR, "elr", p.ELR, "leader_epoch", p.LeaderEpoch)
		case old != nil && slices.Contains(old.ELR, p.Leader) && !slices.Contains(old.ISR, p.Leader):
			c.log.Info("leader elected from the eligible leader replicas", "topic", t.Name, "partition", p.Partition,
				"leader", p.Leader, "previous_isr", old.ISR, "previous_elr", old.ELR, "isr", p.ISR, "elr", p.ELR,
				"leader_epoch", p.LeaderEpoch)
		case old != nil && len(old.ISR) == 0 && len(old.ELR) == 0 && slices.Equal(old.LastKnownELR, []int32{p.Leader}):
			c.log.Warn("last replica standing elected after an unclean restart: records it lost are lost",
				"topic", t.Name, "partition", p.Partition, "leader", p.Leader, "leader_epoch", p.LeaderEpoch)
		case old != nil && !slices.Contains(old.ISR, p.Leader):
			c.log.Warn("unclean leader election: elected an out-of-sync replica", "topic", t.Name,
				"partition", p.Partition, "leader", p.Leader, "previous_isr", old.ISR, "isr", p.ISR,
				"leader_epoch", p.LeaderEpoch)
		default:
			c.log.Info("leader elected", "topic", t.Name, "partition", p.Partition, "leader", p.Leader,
				"isr", p.ISR, "leader_epoch", p.LeaderEpoch)
		}
	}
}
