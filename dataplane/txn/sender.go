package txn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SenderConfig configures a Sender.
type SenderConfig struct {
	// Leader says which broker leads tp now; exists false when its topic
	// is gone (its marker is dropped), leader -1 when it has no leader.
	Leader func(tp TopicPartition) (leader int32, exists bool)
	// Send sends one WriteTxnMarkers request to a broker. It is called for
	// several brokers at once, never twice at once for one broker.
	Send func(ctx context.Context, broker int32, req *kmsg.WriteTxnMarkersRequest) (*kmsg.WriteTxnMarkersResponse, error)
	// Backoff is the pause before a partition's marker is sent again.
	Backoff time.Duration
	// RequestTimeout bounds one WriteTxnMarkers round trip.
	RequestTimeout time.Duration
	Logger         hclog.Logger
	Clock          clockwork.Clock
}

// Sender is the MarkerWriter of a broker: one goroutine (run) hands the
// due markers of each destination broker to one WriteTxnMarkers request;
// a broker has at most one request in flight, and its markers due
// meanwhile wait for its answer, so a slow or hung broker delays only its
// own markers. The partitions whose leader refused (NOT_LEADER_OR_FOLLOWER,
// not enough replicas, a timeout) or could not be reached are retried
// after Backoff, with the leader the newest metadata names.
type Sender struct {
	cfg  SenderConfig
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
	// requests tracks the request goroutines; run waits for them on Close.
	requests sync.WaitGroup

	mu   sync.Mutex
	jobs []*senderJob
	// busy holds the brokers with a request in flight.
	busy map[int32]bool

	// written counts the markers written (partitions acknowledged).
	written atomic.Int64
}

type senderJob struct {
	job       *MarkerJob
	done      func(error)
	remaining map[TopicPartition]time.Time // partition -> not before
	// sending holds the partitions of remaining in a request in flight.
	sending map[TopicPartition]bool
}

// NewSender starts a sender; Close stops it.
func NewSender(cfg SenderConfig) *Sender {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	s := &Sender{cfg: cfg, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		busy: map[int32]bool{}}
	go s.run()
	return s
}

// MarkersWritten is how many markers the sender has had acknowledged.
func (s *Sender) MarkersWritten() int64 { return s.written.Load() }

// Close stops the sender; jobs left are dropped (their coordinator
// resends them after a reload). Idempotent.
func (s *Sender) Close() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// Enqueue implements MarkerWriter.
func (s *Sender) Enqueue(job *MarkerJob, done func(error)) {
	sj := &senderJob{job: job, done: done, remaining: map[TopicPartition]time.Time{}, sending: map[TopicPartition]bool{}}
	for _, tp := range job.Partitions {
		sj.remaining[tp] = time.Time{}
	}
	s.mu.Lock()
	s.jobs = append(s.jobs, sj)
	s.mu.Unlock()
	s.poke()
}

// poke wakes run.
func (s *Sender) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Pending is how many transactions wait for markers.
func (s *Sender) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs)
}

func (s *Sender) run() {
	defer close(s.done)
	defer s.requests.Wait()
	timer := s.cfg.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := s.dispatch()
		if !next.IsZero() {
			timer.Reset(max(next.Sub(s.cfg.Clock.Now()), time.Millisecond))
		}
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-timer.Chan():
		}
	}
}

// entry is one partition's marker in a request.
type entry struct {
	j  *senderJob
	tp TopicPartition
}

// dispatch completes the jobs with nothing left, sends the due markers of
// every broker without a request in flight, and returns when run should
// look again (zero: only on a wake). A due marker whose broker is busy is
// looked at again after Backoff, as its partition's leader may move.
func (s *Sender) dispatch() time.Time {
	now := s.cfg.Clock.Now()
	var next time.Time
	later := func(at time.Time) {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	var finished []*senderJob
	byBroker := map[int32][]entry{}
	s.mu.Lock()
	kept := s.jobs[:0]
	for _, j := range s.jobs {
		if j.job.Ctx.Err() != nil || len(j.remaining) == 0 {
			finished = append(finished, j)
			continue
		}
		for tp, at := range j.remaining {
			if j.sending[tp] {
				continue
			}
			if at.After(now) {
				later(at)
				continue
			}
			leader, exists := s.cfg.Leader(tp)
			switch {
			case !exists:
				s.cfg.Logger.Warn("dropping the marker of a deleted partition", "transactional_id", j.job.TransactionalID,
					"topic", tp.Topic, "partition", tp.Partition)
				delete(j.remaining, tp)
			case leader < 0:
				j.remaining[tp] = now.Add(s.cfg.Backoff)
				later(j.remaining[tp])
			case s.busy[leader]:
				later(now.Add(s.cfg.Backoff))
			default:
				j.sending[tp] = true
				byBroker[leader] = append(byBroker[leader], entry{j, tp})
			}
		}
		if len(j.remaining) == 0 {
			finished = append(finished, j)
			continue
		}
		kept = append(kept, j)
	}
	s.jobs = kept
	for broker, entries := range byBroker {
		s.busy[broker] = true
		s.requests.Add(1)
		go func() {
			defer s.requests.Done()
			s.answered(broker, entries, s.send(broker, entries))
		}()
	}
	s.mu.Unlock()
	for _, j := range finished {
		j.done(j.job.Ctx.Err())
	}
	return next
}

// answered applies broker's codes for entries, frees broker for its next
// request and wakes run (which completes the jobs with nothing left).
func (s *Sender) answered(broker int32, entries []entry, codes []int16) {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	delete(s.busy, broker)
	for i, e := range entries {
		delete(e.j.sending, e.tp)
		switch codes[i] {
		case 0:
			s.written.Add(1)
			delete(e.j.remaining, e.tp)
		case kerr.InvalidProducerEpoch.Code:
			// The partition has seen a newer epoch of this producer:
			// this transaction's marker is not needed there any more.
			s.cfg.Logger.Warn("partition has a newer producer epoch; marker skipped",
				"transactional_id", e.j.job.TransactionalID, "topic", e.tp.Topic, "partition", e.tp.Partition)
			delete(e.j.remaining, e.tp)
		case kerr.UnknownTopicOrPartition.Code:
			if _, exists := s.cfg.Leader(e.tp); !exists {
				delete(e.j.remaining, e.tp)
				continue
			}
			e.j.remaining[e.tp] = now.Add(s.cfg.Backoff)
		default:
			e.j.remaining[e.tp] = now.Add(s.cfg.Backoff)
		}
	}
	s.mu.Unlock()
	s.poke()
}

// send writes entries' markers to broker in one request and returns each
// entry's code (a failed round trip is a retriable code for all).
func (s *Sender) send(broker int32, entries []entry) []int16 {
	codes := make([]int16, len(entries))
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	// One marker per transaction, with its partitions of this broker.
	markerOf := map[*senderJob]int{}
	for _, e := range entries {
		i, ok := markerOf[e.j]
		if !ok {
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID = e.j.job.ProducerID
			m.ProducerEpoch = e.j.job.ProducerEpoch
			m.Committed = e.j.job.Commit
			m.CoordinatorEpoch = e.j.job.CoordinatorEpoch
			req.Markers = append(req.Markers, m)
			i = len(req.Markers) - 1
			markerOf[e.j] = i
		}
		m := &req.Markers[i]
		ti := -1
		for k := range m.Topics {
			if m.Topics[k].Topic == e.tp.Topic {
				ti = k
			}
		}
		if ti < 0 {
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = e.tp.Topic
			m.Topics = append(m.Topics, t)
			ti = len(m.Topics) - 1
		}
		m.Topics[ti].Partitions = append(m.Topics[ti].Partitions, e.tp.Partition)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	resp, err := s.cfg.Send(ctx, broker, req)
	if err == nil && resp == nil {
		err = errors.New("no response")
	}
	if err != nil {
		s.cfg.Logger.Debug("cannot send transaction markers", "broker", broker, "markers", len(entries), "error", err)
		for i := range codes {
			codes[i] = kerr.NetworkException.Code
		}
		return codes
	}
	// Index the answer by producer id, topic and partition.
	type key struct {
		pid int64
		tp  TopicPartition
	}
	got := map[key]int16{}
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				got[key{m.ProducerID, TopicPartition{t.Topic, p.Partition}}] = p.ErrorCode
			}
		}
	}
	for i, e := range entries {
		code, ok := got[key{e.j.job.ProducerID, e.tp}]
		if !ok {
			code = kerr.UnknownServerError.Code
		}
		codes[i] = code
		if code != 0 && code != kerr.NotLeaderForPartition.Code {
			s.cfg.Logger.Debug("marker refused", "broker", broker, "transactional_id", e.j.job.TransactionalID,
				"topic", e.tp.Topic, "partition", e.tp.Partition, "error", kerr.ErrorForCode(code))
		}
	}
	return codes
}
