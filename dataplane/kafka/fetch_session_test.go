package kafka

import (
	"context"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sessionClient sends fetches of one session as a client would.
type sessionClient struct {
	t       *testing.T
	h       *Handlers
	version int16
	id      int32
	epoch   int32
}

// send sends a fetch with the session's id and epoch naming parts and
// forgetting forget; on success it moves the epoch on as a client does.
func (c *sessionClient) send(maxWaitMs int32, forget []fetchPart, parts ...fetchPart) *kmsg.FetchResponse {
	c.t.Helper()
	return c.sendAs(c.id, c.epoch, maxWaitMs, forget, parts...)
}

func (c *sessionClient) sendAs(id, epoch, maxWaitMs int32, forget []fetchPart, parts ...fetchPart) *kmsg.FetchResponse {
	c.t.Helper()
	wr := fetchRequest(c.h, c.version, maxWaitMs, 1, 1<<20, parts...)
	req := wr.Body.(*kmsg.FetchRequest)
	req.SessionID, req.SessionEpoch = id, epoch
	for _, f := range forget {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic = f.topic
		if tp := c.h.Partitions.Image().Topics[f.topic]; tp != nil {
			ft.TopicID = tp.ID
		}
		ft.Partitions = []int32{f.partition}
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	r, err := c.h.handleFetch(context.Background(), wr)
	if err != nil {
		c.t.Fatal(err)
	}
	resp := resolveFetch(c.t, r)
	if resp.ErrorCode == 0 && epoch >= 0 {
		if epoch == 0 {
			c.id, c.epoch = resp.SessionID, 1
		} else {
			c.epoch = nextSessionEpoch(epoch)
		}
	}
	return resp
}

// answered lists the partitions of a response as "topic-partition",
// sorted, resolving topic ids through the image.
func answered(h *Handlers, resp *kmsg.FetchResponse) map[string]kmsg.FetchResponseTopicPartition {
	out := map[string]kmsg.FetchResponseTopicPartition{}
	for _, t := range resp.Topics {
		name := t.Topic
		if resp.Version >= 13 {
			if tp := h.Partitions.Image().TopicByID(t.TopicID); tp != nil {
				name = tp.Name
			}
		}
		for _, p := range t.Partitions {
			out[name+"-"+string(rune('0'+p.Partition))] = p
		}
	}
	return out
}

func keys(m map[string]kmsg.FetchResponseTopicPartition) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestFetchSessionLifecycle(t *testing.T) {
	for _, version := range []int16{12, 13} {
		t.Run(string(rune('0'+version/10))+string(rune('0'+version%10)), func(t *testing.T) {
			h := newDataHandlers(t)
			h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
			c := &sessionClient{t: t, h: h, version: version}
			t0 := fetchPart{"t", 0, 0, 1 << 20, -1}
			t1 := fetchPart{"t", 1, 0, 1 << 20, -1}

			// Create: a full answer with every partition and a new id.
			resp := c.send(0, nil, t0, t1)
			if resp.ErrorCode != 0 || resp.SessionID == 0 {
				t.Fatalf("create: error %d, session id %d", resp.ErrorCode, resp.SessionID)
			}
			if got := keys(answered(h, resp)); len(got) != 2 {
				t.Fatalf("full answer holds %v, want both partitions", got)
			}
			if h.FetchSessions.Len() != 1 {
				t.Fatalf("cache holds %d sessions", h.FetchSessions.Len())
			}

			// Nothing changed: an empty incremental answer.
			resp = c.send(0, nil)
			if resp.ErrorCode != 0 || resp.SessionID != c.id || len(answered(h, resp)) != 0 {
				t.Fatalf("idle incremental: error %d id %d partitions %v", resp.ErrorCode, resp.SessionID, keys(answered(h, resp)))
			}

			// Records on t-0: only t-0 is answered, with records and HW.
			produce(t, h, 9, 1, 1000, "t", 0, batch(3, 10))
			resp = c.send(0, nil)
			got := answered(h, resp)
			if p, ok := got["t-0"]; !ok || len(got) != 1 || p.HighWatermark != 3 || len(batchOffsets(t, p.RecordBatches)) != 1 {
				t.Fatalf("after produce: %v (t-0 %+v)", keys(got), got["t-0"])
			}

			// The client moves t-0 on; nothing new: empty answer.
			t0.offset = 3
			resp = c.send(0, nil, t0)
			if got := answered(h, resp); len(got) != 0 {
				t.Fatalf("after moving t-0 to the log end: %v", keys(got))
			}

			// A wrong epoch is refused and does not move the session on.
			if resp := c.sendAs(c.id, c.epoch+1, 0, nil); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
				t.Fatalf("epoch skipped: error %d", resp.ErrorCode)
			}
			if resp := c.sendAs(c.id, c.epoch-1, 0, nil); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
				t.Fatalf("epoch repeated: error %d", resp.ErrorCode)
			}
			if resp := c.send(0, nil); resp.ErrorCode != 0 {
				t.Fatalf("right epoch after wrong ones: error %d", resp.ErrorCode)
			}

			// Forget t-0: its records are no longer answered, t-1's are.
			if resp := c.send(0, []fetchPart{t0}); resp.ErrorCode != 0 || len(answered(h, resp)) != 0 {
				t.Fatalf("forget: error %d partitions %v", resp.ErrorCode, keys(answered(h, resp)))
			}
			produce(t, h, 9, 1, 1000, "t", 0, batch(1, 10))
			produce(t, h, 9, 1, 1000, "t", 1, batch(2, 10))
			got = answered(h, c.send(0, nil))
			if _, ok := got["t-1"]; !ok || len(got) != 1 {
				t.Fatalf("after forgetting t-0: %v", keys(got))
			}
			t1.offset = 2
			c.send(0, nil, t1)

			// Add t-0 back at offset 3: its new record is answered.
			got = answered(h, c.send(0, nil, t0))
			if p, ok := got["t-0"]; !ok || len(got) != 1 || batchOffsets(t, p.RecordBatches)[0] != 3 {
				t.Fatalf("t-0 added back: %v", keys(got))
			}

			// Epoch -1 closes the session: a sessionless full answer.
			resp = c.sendAs(c.id, -1, 0, nil, t0, t1)
			if resp.ErrorCode != 0 || resp.SessionID != 0 || len(answered(h, resp)) != 2 {
				t.Fatalf("close: error %d id %d partitions %v", resp.ErrorCode, resp.SessionID, keys(answered(h, resp)))
			}
			if resp := c.send(0, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("closed session: error %d", resp.ErrorCode)
			}
			if h.FetchSessions.Len() != 0 {
				t.Fatalf("cache holds %d sessions after close", h.FetchSessions.Len())
			}
			// An id never handed out.
			if resp := c.sendAs(12345, 1, 0, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
				t.Fatalf("unknown id: error %d", resp.ErrorCode)
			}
		})
	}
}

// A session created with topic ids cannot go on without them.
func TestFetchSessionTopicIDUse(t *testing.T) {
	h := newDataHandlers(t)
	h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
	c := &sessionClient{t: t, h: h, version: 13}
	c.send(0, nil, fetchPart{"t", 0, 0, 1 << 20, -1})
	c.version = 12
	if resp := c.send(0, nil); resp.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("v12 fetch of a v13 session: error %d", resp.ErrorCode)
	}
}

// An incremental answer carries a partition whose high watermark moved,
// without records.
func TestFetchSessionHighWatermarkChange(t *testing.T) {
	h := newDataHandlers(t)
	h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
	// w-0 has ISR {1, 2}: its high watermark waits for broker 2.
	produce(t, h, 9, 1, 1000, "w", 0, batch(2, 10))
	c := &sessionClient{t: t, h: h, version: 12}
	w0 := fetchPart{"w", 0, 2, 1 << 20, -1}
	resp := c.send(0, nil, w0)
	if p := answered(h, resp)["w-0"]; p.HighWatermark != 0 {
		t.Fatalf("full answer: %+v", p)
	}
	if got := answered(h, c.send(0, nil)); len(got) != 0 {
		t.Fatalf("nothing moved: %v", keys(got))
	}
	p, err := h.Partitions.Partition("w", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.UpdateFollowerFetch(2, 2); err != nil {
		t.Fatal(err)
	}
	got := answered(h, c.send(0, nil))
	if wp, ok := got["w-0"]; !ok || wp.HighWatermark != 2 || len(wp.RecordBatches) != 0 {
		t.Fatalf("after the high watermark moved: %v %+v", keys(got), wp)
	}
	if got := answered(h, c.send(0, nil)); len(got) != 0 {
		t.Fatalf("high watermark sent once: %v", keys(got))
	}
}

// An incremental fetch with nothing to answer parks on its session until
// records arrive on any of its partitions, or MaxWait passes.
func TestFetchSessionParks(t *testing.T) {
	h := newDataHandlers(t)
	h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
	c := &sessionClient{t: t, h: h, version: 13}
	c.send(0, nil, fetchPart{"t", 0, 0, 1 << 20, -1}, fetchPart{"t", 1, 0, 1 << 20, -1})

	start := time.Now()
	if got := answered(h, c.send(100, nil)); len(got) != 0 {
		t.Fatalf("idle: %v", keys(got))
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("idle fetch answered after %v, before MaxWait", d)
	}

	done := make(chan *kmsg.FetchResponse, 1)
	start = time.Now()
	go func() { done <- c.send(10_000, nil) }()
	// Produce once the fetch is parked: no partition is read per wait, so
	// look for the session's waker on the partition.
	p, err := h.Partitions.Partition("t", 1)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Waiting() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("session never watched t-1")
		}
		time.Sleep(time.Millisecond)
	}
	produce(t, h, 9, 1, 1000, "t", 1, batch(1, 10))
	select {
	case resp := <-done:
		if got := answered(h, resp); len(got) != 1 || len(got["t-1"].RecordBatches) == 0 {
			t.Fatalf("woken fetch: %v", keys(got))
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("woken after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("parked fetch not woken by records")
	}
}

// Closing a session unregisters its wakers from every partition.
func TestFetchSessionCloseUnwatches(t *testing.T) {
	h := newDataHandlers(t)
	h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
	c := &sessionClient{t: t, h: h, version: 13}
	c.send(0, nil, fetchPart{"t", 0, 0, 1 << 20, -1})
	p, _ := h.Partitions.Partition("t", 0)
	if p.Waiting() != 1 {
		t.Fatalf("session partition has %d wakers, want 1", p.Waiting())
	}
	c.sendAs(c.id, -1, 0, nil)
	if p.Waiting() != 0 {
		t.Fatalf("closed session left %d wakers", p.Waiting())
	}
}

func TestFetchSessionCacheEviction(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewFetchSessionCache(2, time.Minute, func() time.Time { return now })
	create := func(follower bool) int32 {
		s := c.create(follower, true)
		if s == nil {
			return 0
		}
		s.unlock()
		return s.id
	}
	use := func(id int32) *kerr.Error {
		c.mu.Lock()
		s := c.sessions[id]
		c.mu.Unlock()
		epoch := int32(1)
		if s != nil {
			s.mu.Lock()
			epoch = s.epoch
			s.mu.Unlock()
		}
		s, err := c.acquire(id, epoch, true)
		if err == nil {
			s.unlock()
		}
		return err
	}
	a, b := create(false), create(false)
	if a == 0 || b == 0 || a == b {
		t.Fatalf("ids %d %d", a, b)
	}
	// Full, nothing idle: a consumer gets no session.
	if id := create(false); id != 0 {
		t.Fatal("a third consumer session took a busy slot")
	}
	now = now.Add(30 * time.Second)
	if err := use(a); err != nil { // b is now the least recently used
		t.Fatal(err)
	}
	// A follower takes the least recently used consumer session's slot.
	f := create(true)
	if f == 0 {
		t.Fatal("follower session refused")
	}
	if err := use(b); err != kerr.FetchSessionIDNotFound {
		t.Fatalf("evicted session: %v", err)
	}
	if err := use(a); err != nil {
		t.Fatalf("kept session: %v", err)
	}
	// Sessions idle for the eviction time make room for anyone.
	now = now.Add(2 * time.Minute)
	if id := create(false); id == 0 {
		t.Fatal("idle sessions not evicted")
	}
	if c.Len() != 1 {
		t.Fatalf("cache holds %d sessions, want 1", c.Len())
	}
	// Zero slots: no sessions at all.
	if s := NewFetchSessionCache(0, time.Minute, nil).create(true, true); s != nil {
		t.Fatal("session created with no slots")
	}
}

func TestNextSessionEpoch(t *testing.T) {
	for _, c := range [][2]int32{{1, 2}, {41, 42}, {math.MaxInt32, 1}} {
		if got := nextSessionEpoch(c[0]); got != c[1] {
			t.Errorf("nextSessionEpoch(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}

// Without a cache every fetch is sessionless: epoch 0 answers with id 0.
func TestFetchSessionsOff(t *testing.T) {
	h := newDataHandlers(t)
	c := &sessionClient{t: t, h: h, version: 13}
	resp := c.send(0, nil, fetchPart{"t", 0, 0, 1 << 20, -1})
	if resp.ErrorCode != 0 || resp.SessionID != 0 || len(answered(h, resp)) != 1 {
		t.Fatalf("sessions off: error %d id %d partitions %v", resp.ErrorCode, resp.SessionID, keys(answered(h, resp)))
	}
}

// A follower's session keeps reading a partition whose ISR does not hold
// the follower (its expansion may need another try with nothing changed),
// and skips one whose ISR does once it is caught up.
func TestFetchSessionFollowerOutsideISR(t *testing.T) {
	h := newDataHandlers(t)
	h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
	// t-0: replicas {1, 2}, ISR {1}; w-0: ISR {1, 2}.
	c := &sessionClient{t: t, h: h, version: 12}
	wr := fetchRequest(h, 12, 0, 1, 1<<20, fetchPart{"t", 0, 0, 1 << 20, 3}, fetchPart{"w", 0, 0, 1 << 20, 3})
	req := wr.Body.(*kmsg.FetchRequest)
	req.ReplicaID, req.SessionID, req.SessionEpoch = 2, 0, 0
	r, err := h.handleFetch(context.Background(), wr)
	if err != nil {
		t.Fatal(err)
	}
	resp := resolveFetch(t, r)
	if resp.ErrorCode != 0 || resp.SessionID == 0 {
		t.Fatalf("follower session: error %d id %d", resp.ErrorCode, resp.SessionID)
	}
	c.id, c.epoch = resp.SessionID, 1
	h.FetchSessions.mu.Lock()
	s := h.FetchSessions.sessions[c.id]
	h.FetchSessions.mu.Unlock()
	stale := func(topic string) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.index[sessionKey{topic: topic}].stale
	}
	if !stale("t") || stale("w") {
		t.Fatalf("after the full fetch: t-0 stale %v (want true), w-0 stale %v (want false)", stale("t"), stale("w"))
	}
}

// Partitions that answered records move to the end of the session's order:
// under a response size limit the others are read first next time.
func TestFetchSessionRotation(t *testing.T) {
	h := newDataHandlers(t)
	h.FetchSessions = NewFetchSessionCache(10, time.Minute, nil)
	produce(t, h, 9, 1, 1000, "t", 0, batch(1, 100))
	produce(t, h, 9, 1, 1000, "t", 1, batch(1, 100))
	c := &sessionClient{t: t, h: h, version: 13}
	// A response limit of one byte: only the first partition with records
	// is answered (KIP-74).
	first := func(parts ...fetchPart) (string, *kmsg.FetchResponse) {
		t.Helper()
		wr := fetchRequest(h, 13, 0, 1, 1, parts...)
		req := wr.Body.(*kmsg.FetchRequest)
		req.SessionID, req.SessionEpoch = c.id, c.epoch
		r, err := h.handleFetch(context.Background(), wr)
		if err != nil {
			t.Fatal(err)
		}
		resp := resolveFetch(t, r)
		if resp.ErrorCode != 0 {
			t.Fatalf("error %d", resp.ErrorCode)
		}
		if c.epoch == 0 {
			c.id, c.epoch = resp.SessionID, 1
		} else {
			c.epoch = nextSessionEpoch(c.epoch)
		}
		var with []string
		for k, p := range answered(h, resp) {
			if len(p.RecordBatches) > 0 {
				with = append(with, k)
			}
		}
		if len(with) != 1 {
			t.Fatalf("partitions with records: %v, want one", with)
		}
		return with[0], resp
	}
	got1, _ := first(fetchPart{"t", 0, 0, 1 << 20, -1}, fetchPart{"t", 1, 0, 1 << 20, -1})
	// The client does not move on: the other partition answers now.
	got2, _ := first()
	if got1 == got2 {
		t.Fatalf("%s answered records twice in a row; the other starved", got1)
	}
}

// A session evicted while a fetch holds it (parked) is cleaned up by that
// fetch when it ends: its wakers leave every partition, and its id is gone.
func TestFetchSessionEvictedWhileParked(t *testing.T) {
	h := newDataHandlers(t)
	h.FetchSessions = NewFetchSessionCache(1, time.Minute, nil)
	consumer := &sessionClient{t: t, h: h, version: 13}
	consumer.send(0, nil, fetchPart{"t", 0, 0, 1 << 20, -1})
	h.FetchSessions.mu.Lock()
	s := h.FetchSessions.sessions[consumer.id]
	h.FetchSessions.mu.Unlock()

	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- consumer.send(500, nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.mu.TryLock() { // free: the fetch has not taken it yet
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the incremental fetch never held its session")
		}
		time.Sleep(time.Millisecond)
	}
	// A follower's session takes the only slot from the held one.
	wr := fetchRequest(h, 13, 0, 1, 1<<20, fetchPart{"t", 1, 0, 1 << 20, 3})
	req := wr.Body.(*kmsg.FetchRequest)
	req.ReplicaID, req.SessionEpoch = 2, 0
	r, err := h.handleFetch(context.Background(), wr)
	if err != nil {
		t.Fatal(err)
	}
	if resp := resolveFetch(t, r); resp.SessionID == 0 || resp.SessionID == consumer.id {
		t.Fatalf("follower session id %d (consumer's %d)", resp.SessionID, consumer.id)
	}
	<-done
	p, _ := h.Partitions.Partition("t", 0)
	if n := p.Waiting(); n != 0 {
		t.Fatalf("evicted session left %d wakers on t-0", n)
	}
	if resp := consumer.send(0, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("evicted session: error %d", resp.ErrorCode)
	}
}
