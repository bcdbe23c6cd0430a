// Package throttle is a broker's replication quotas (KIP-73): the byte
// rates that bound the replication of the replicas named by the topic
// configs leader.replication.throttled.replicas and
// follower.replication.throttled.replicas.
//
// Each side has one quota on this broker, shared by all its throttled
// replicas:
//
//   - Leader side: the rate is leader.replication.throttled.rate; the
//     throttled partitions are those whose topic's leader list names this
//     broker (partition:thisBroker, or "*"). The Fetch handler leaves out
//     the data of such a partition, for a follower outside the ISR, while
//     the quota is exceeded, and records the bytes it sends for throttled
//     partitions (to any follower). Followers in the ISR are never held
//     back, so throttling cannot shrink the ISR.
//   - Follower side: the rate is follower.replication.throttled.rate; the
//     throttled partitions are those whose topic's follower list names this
//     broker. The replica fetcher leaves such a partition out of its fetch
//     while the quota is exceeded and the replica is not caught up (its log
//     end below the leader's high watermark of the last answer), and
//     records the bytes it appends for throttled partitions.
//
// As in Kafka, the lists name replicas by the broker that holds them, so a
// leader list names the brokers that send (the current replicas of a
// moving partition) and a follower list the brokers that receive (the
// replicas being added). A rate is this broker's own value
// (image.BrokerOverrides), else the cluster-wide one (image.BrokerConfigs),
// else unbounded (Kafka's default, Long.MAX_VALUE): a side throttles only
// when both its rate is bounded and some partition is listed for it. Rate 0
// stops throttled replication.
//
// A quota is a token bucket (golang.org/x/time/rate) holding at most one
// second of the rate, and at least 1 MiB: a check that finds a token lets
// one read through whole (it is recorded after it was sent, possibly
// driving the bucket below zero), and the bucket's debt is paid back at the
// rate. A new image applies a new rate or list at once; the bucket keeps
// its state across rate changes.
package throttle

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/skein-io/skein/controller/image"
)

// minBurst is the smallest bucket: one default replica fetch
// (replica.fetch.max.bytes) fits in it.
const minBurst = 1 << 20

// Throttles are the two sides' quotas of one broker. The zero value is not
// usable; a nil *Throttles throttles nothing.
type Throttles struct {
	nodeID   int32
	log      hclog.Logger
	now      func() time.Time
	leader   Side
	follower Side

	applyMu sync.Mutex
}

// New returns the quotas of broker nodeID, throttling nothing until an
// image says otherwise; now nil means time.Now.
func New(nodeID int32, log hclog.Logger, now func() time.Time) *Throttles {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if now == nil {
		now = time.Now
	}
	t := &Throttles{nodeID: nodeID, log: log, now: now}
	t.leader = Side{name: "leader", now: now,
		rateKey: image.LeaderThrottledRateConfig, replicasKey: image.LeaderThrottledReplicasConfig}
	t.follower = Side{name: "follower", now: now,
		rateKey: image.FollowerThrottledRateConfig, replicasKey: image.FollowerThrottledReplicasConfig}
	return t
}

// Leader is the leader side (nil for a nil t).
func (t *Throttles) Leader() *Side {
	if t == nil {
		return nil
	}
	return &t.leader
}

// Follower is the follower side (nil for a nil t).
func (t *Throttles) Follower() *Side {
	if t == nil {
		return nil
	}
	return &t.follower
}

// ApplyImage takes the rates and throttled replicas of img. It logs once
// when a side starts or stops throttling, or changes rate while it
// throttles.
func (t *Throttles) ApplyImage(img *image.Image) {
	if t == nil || img == nil {
		return
	}
	t.applyMu.Lock()
	defer t.applyMu.Unlock()
	for _, s := range []*Side{&t.leader, &t.follower} {
		s.apply(img, t.nodeID, t.log)
	}
}

// Side is one side's quota and throttled partitions. Its methods are safe
// for concurrent use; a nil *Side throttles nothing.
type Side struct {
	name                 string
	rateKey, replicasKey string
	now                  func() time.Time

	// state is replaced whole by apply.
	state atomic.Pointer[sideState]
	// Owned by apply (under Throttles.applyMu): what was last logged.
	applying   bool
	loggedRate int64
}

// sideState is one image's view of a side.
type sideState struct {
	// lim is the bucket; nil when the rate is unbounded. stopped: rate 0.
	lim     *rate.Limiter
	stopped bool
	rate    int64
	// topics are the throttled partitions of each topic listing this
	// broker: every partition (nil map) or the listed ones.
	topics map[string]map[int32]bool
}

func (s *Side) apply(img *image.Image, nodeID int32, log hclog.Logger) {
	r := int64(math.MaxInt64)
	if v, _, ok := img.BrokerConfig(nodeID, s.rateKey); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			r = n
		} else {
			log.Warn("bad replication throttle rate, not throttling", "config", s.rateKey, "value", v)
		}
	}
	topics := map[string]map[int32]bool{}
	for name, t := range img.Topics {
		v, ok := t.Configs[s.replicasKey]
		if !ok {
			continue
		}
		tr, err := image.ParseThrottledReplicas(v)
		if err != nil {
			log.Warn("bad throttled replicas list, ignored", "topic", name, "config", s.replicasKey, "value", v, "error", err)
			continue
		}
		all, parts := tr.Partitions(nodeID)
		switch {
		case all:
			topics[name] = nil
		case len(parts) > 0:
			m := make(map[int32]bool, len(parts))
			for _, p := range parts {
				m[p] = true
			}
			topics[name] = m
		}
	}
	old := s.state.Load()
	next := &sideState{rate: r, topics: topics}
	switch {
	case r == math.MaxInt64:
	case r == 0:
		next.stopped = true
	case old != nil && old.lim != nil:
		// The bucket keeps its tokens (or its debt) across rate changes.
		next.lim = old.lim
		if old.rate != r {
			now := s.now()
			next.lim.SetLimitAt(now, rate.Limit(r))
			next.lim.SetBurstAt(now, burst(r))
		}
	default:
		next.lim = rate.NewLimiter(rate.Limit(r), burst(r)) // full
	}
	s.state.Store(next)

	applying := r != math.MaxInt64 && len(topics) > 0
	switch {
	case applying && !s.applying:
		log.Info("replication throttle applies", "side", s.name, "rate", r, "topics", len(topics))
	case !applying && s.applying:
		log.Info("replication throttle no longer applies", "side", s.name)
	case applying && r != s.loggedRate:
		log.Info("replication throttle rate changed", "side", s.name, "rate", r, "topics", len(topics))
	}
	s.applying, s.loggedRate = applying, r
}

func burst(r int64) int {
	return int(min(max(r, minBurst), math.MaxInt32))
}

// Throttled says whether the partition is throttled on this side: listed
// for this broker, with a bounded rate.
func (s *Side) Throttled(topic string, partition int32) bool {
	if s == nil {
		return false
	}
	st := s.state.Load()
	if st == nil || st.rate == math.MaxInt64 {
		return false
	}
	parts, ok := st.topics[topic]
	return ok && (parts == nil || parts[partition])
}

// Exceeded says whether the quota is used up: a throttled partition may
// not move data now.
func (s *Side) Exceeded() bool {
	if s == nil {
		return false
	}
	st := s.state.Load()
	switch {
	case st == nil:
		return false
	case st.stopped:
		return true
	case st.lim == nil:
		return false
	}
	return st.lim.TokensAt(s.now()) < 1
}

// Record takes n bytes of throttled replication, sent or received, from
// the quota; it may leave the quota exceeded for a while.
func (s *Side) Record(n int64) {
	if s == nil || n <= 0 {
		return
	}
	st := s.state.Load()
	if st == nil || st.lim == nil {
		return
	}
	now := s.now()
	b := int64(st.lim.Burst())
	for n > 0 {
		k := min(n, b)
		// A reservation is never cancelled: it is the debt of bytes moved.
		st.lim.ReserveN(now, int(k))
		n -= k
	}
}

// ReadyAt returns when the quota stops being exceeded (now if it is not;
// ok false if it never will: rate 0).
func (s *Side) ReadyAt() (at time.Time, ok bool) {
	now := time.Now()
	if s == nil {
		return now, true
	}
	st := s.state.Load()
	switch {
	case st == nil || (st.lim == nil && !st.stopped):
		return now, true
	case st.stopped:
		return time.Time{}, false
	}
	now = s.now()
	tokens := st.lim.TokensAt(now)
	if tokens >= 1 {
		return now, true
	}
	wait := time.Duration((1 - tokens) / float64(st.lim.Limit()) * float64(time.Second))
	return now.Add(wait), true
}
