package partition

// The broker's AlterPartition sender (Kafka's AlterPartitionManager): every
// partition this broker leads hands its pending ISR change (isr.go) to the
// manager's one sender, which sends ONE AlterPartition at a time carrying
// every change that is due; changes that arrive while a request is in flight
// go in the next one. The rules of isr.go stay per partition:
//
//   - One change in flight per partition: a partition has at most one item,
//     queued or in the request in flight. A newer change of a partition
//     whose item is in flight waits in the queue for the next request; the
//     older item, if its answer asks for a retry, is then dropped.
//   - An item whose change is no longer the partition's pending one
//     (metadata moved past it, the partition closed) is dropped before it
//     is sent.
//   - Each partition's answer is handled alone (handleISRAnswer). A
//     failure of the whole request (no answer, a top-level error) is a
//     failure of every change it carried. A change to retry waits its own
//     backoff (isrBackoffInitial doubling to isrBackoffMax) before it is
//     due again.
//
// The sender is one goroutine, tracked by the manager and stopped by its
// Close (the context's end); nothing is started per partition or per change.

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// isrItem is one partition's pending change in the sender.
type isrItem struct {
	p  *Partition
	pc *pendingISR
	// backoff is the wait after the next failure; due is when it may be
	// sent (zero: at once).
	backoff time.Duration
	due     time.Time
}

// isrSender batches ISR changes into AlterPartition requests. enqueue is
// safe for concurrent use; run is the one sending goroutine.
type isrSender struct {
	alter  AlterPartitionFunc
	logger hclog.Logger
	// now is the sender's clock for backoffs (real time: the timers that
	// wait on it are real).
	now func() time.Time
	// wake has room for one signal: an item was queued.
	wake chan struct{}
	// requests counts the AlterPartition requests sent (each attempt);
	// answered counts those whose answers have been handled.
	requests, answered atomic.Int64

	mu struct {
		sync.Mutex
		// queued holds at most one item per partition, not in flight.
		queued map[*Partition]*isrItem // protected by mu
	}
}

func newISRSender(alter AlterPartitionFunc, logger hclog.Logger) *isrSender {
	s := &isrSender{alter: alter, logger: logger, now: time.Now, wake: make(chan struct{}, 1)}
	s.mu.queued = map[*Partition]*isrItem{}
	return s
}

// isrChange is a partition's new pending change.
type isrChange struct {
	p  *Partition
	pc *pendingISR
}

// enqueue queues new pending changes for the next request, together: the
// sender sees all of them or none. Each replaces any older queued item of
// its partition (an item in flight stays in flight).
func (s *isrSender) enqueue(changes ...isrChange) {
	s.mu.Lock()
	for _, c := range changes {
		s.mu.queued[c.p] = &isrItem{p: c.p, pc: c.pc, backoff: isrBackoffInitial}
	}
	s.mu.Unlock()
	s.signal()
}

func (s *isrSender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// requeue puts an item whose change must be retried back in the queue,
// due after its backoff, unless its partition has queued a newer change.
func (s *isrSender) requeue(it *isrItem, now time.Time) {
	it.due = now.Add(it.backoff)
	it.backoff = min(2*it.backoff, isrBackoffMax)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, newer := s.mu.queued[it.p]; !newer {
		s.mu.queued[it.p] = it
	}
}

// take removes and returns the items due at now, and the earliest due time
// among those left (zero: none).
func (s *isrSender) take(now time.Time) (due []*isrItem, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, it := range s.mu.queued {
		if it.due.After(now) {
			if next.IsZero() || it.due.Before(next) {
				next = it.due
			}
			continue
		}
		due = append(due, it)
		delete(s.mu.queued, p)
	}
	return due, next
}

// run sends the queued changes until ctx ends: one request at a time, each
// carrying every change due when it is built.
func (s *isrSender) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	failures := 0
	for {
		due, next := s.take(s.now())
		// Changes metadata has moved past are dropped here, unsent.
		due = slices.DeleteFunc(due, func(it *isrItem) bool { return !it.p.stillPending(it.pc) })
		if len(due) > 0 {
			if !s.send(ctx, due, &failures) {
				return
			}
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(s.now()), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
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

// send sends one request carrying items and hands each partition its
// answer; the changes to retry go back in the queue. failures counts the
// consecutive requests without an answer (for logging). It returns false
// when ctx ended.
func (s *isrSender) send(ctx context.Context, items []*isrItem, failures *int) bool {
	req := alterPartitionRequest(items)
	rctx, cancel := context.WithTimeout(ctx, isrRequestTimeout)
	s.requests.Add(1)
	resp, err := s.alter(rctx, req)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	switch {
	case err == nil && resp == nil:
		err = errors.New("no AlterPartition response")
	case err == nil && resp.ErrorCode != 0:
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	now := s.now()
	if err != nil {
		*failures++
		if *failures%10 == 1 {
			s.logger.Warn("ISR changes not answered; retrying", "partitions", len(items), "failures", *failures, "error", err)
		}
		for _, it := range items {
			s.requeue(it, now)
		}
		return true
	}
	*failures = 0
	answers := indexAlterPartitionResponse(resp)
	retrying := 0
	for _, it := range items {
		rp := answers.find(it.p)
		if !it.p.handleISRAnswer(it.pc, rp) {
			s.requeue(it, now)
			retrying++
		}
	}
	s.answered.Add(1)
	s.logger.Info("AlterPartition answered", "partitions", len(items), "retrying", retrying)
	return true
}

// alterPartitionRequest is one AlterPartition (v3) carrying every item's
// change, grouped by topic, in topic and partition order.
func alterPartitionRequest(items []*isrItem) *kmsg.AlterPartitionRequest {
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b *isrItem) int {
		return cmp.Or(cmp.Compare(a.p.tp.Topic, b.p.tp.Topic), slices.Compare(a.p.topicID[:], b.p.topicID[:]),
			cmp.Compare(a.p.tp.Partition, b.p.tp.Partition))
	})
	req := kmsg.NewPtrAlterPartitionRequest()
	req.Version = 3
	for _, it := range sorted {
		p, pc := it.p, it.pc
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.tp.Topic || req.Topics[n-1].TopicID != p.topicID {
			rt := kmsg.NewAlterPartitionRequestTopic()
			rt.Topic, rt.TopicID = p.tp.Topic, p.topicID
			req.Topics = append(req.Topics, rt)
		}
		rt := &req.Topics[len(req.Topics)-1]
		rp := kmsg.NewAlterPartitionRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = p.tp.Partition, pc.leaderEpoch, pc.partitionEpoch
		rp.NewISR = slices.Clone(pc.proposed)
		for i, r := range pc.proposed {
			m := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			m.BrokerID, m.BrokerEpoch = r, pc.epochs[i]
			rp.NewEpochISR = append(rp.NewEpochISR, m)
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// alterPartitionAnswers finds each partition's answer in a response, by
// topic id or, failing that, topic name.
type alterPartitionAnswers struct {
	byID   map[idPartition]*kmsg.AlterPartitionResponseTopicPartition
	byName map[namePartition]*kmsg.AlterPartitionResponseTopicPartition
}

type idPartition struct {
	id        [16]byte
	partition int32
}

type namePartition struct {
	name      string
	partition int32
}

func indexAlterPartitionResponse(resp *kmsg.AlterPartitionResponse) alterPartitionAnswers {
	a := alterPartitionAnswers{
		byID:   map[idPartition]*kmsg.AlterPartitionResponseTopicPartition{},
		byName: map[namePartition]*kmsg.AlterPartitionResponseTopicPartition{},
	}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			if rt.TopidID != ([16]byte{}) {
				a.byID[idPartition{rt.TopidID, rp.Partition}] = rp
			}
			if rt.Topic != "" {
				a.byName[namePartition{rt.Topic, rp.Partition}] = rp
			}
		}
	}
	return a
}

// find is p's answer, nil when the response does not name it.
func (a alterPartitionAnswers) find(p *Partition) *kmsg.AlterPartitionResponseTopicPartition {
	if rp := a.byID[idPartition{p.topicID, p.tp.Partition}]; rp != nil {
		return rp
	}
	return a.byName[namePartition{p.tp.Topic, p.tp.Partition}]
}
