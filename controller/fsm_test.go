package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

func i32(v int32) *int32 { return &v }

var (
	topicA = [16]byte{1}
	topicB = [16]byte{2}
)

// testLog is a log of entries covering every record type.
func testLog() [][]record {
	return [][]record{
		{{Type: typeInitCluster, InitCluster: &initClusterRecord{ClusterID: "c1"}},
			{Type: typeRegisterController, RegisterController: &registerControllerRecord{ID: 1, Host: "h", Port: 9093}}},
		{{Type: typeRegisterBroker, RegisterBroker: &registerBrokerRecord{ID: 101, Incarnation: "x", Host: "h", Port: 9092}}},
		{{Type: typeUnfenceBroker, UnfenceBroker: &brokerEpochRecord{ID: 101, Epoch: 2}}},
		{{Type: typeCreateTopic, CreateTopic: &createTopicRecord{Name: "a", TopicID: topicA, Configs: map[string]string{"retention.ms": "1"}}},
			{Type: typeCreatePartition, CreatePartition: &createPartitionRecord{TopicID: topicA, Partition: 0, Replicas: []int32{101}, ISR: []int32{101}, Leader: 101}},
			{Type: typeCreatePartition, CreatePartition: &createPartitionRecord{TopicID: topicA, Partition: 1, Replicas: []int32{101}, ISR: []int32{101}, Leader: 101}}},
		{{Type: typeFenceBroker, FenceBroker: &brokerEpochRecord{ID: 101, Epoch: 2}},
			{Type: typeChangePartition, ChangePartition: &changePartitionRecord{TopicID: topicA, Partition: 0, Leader: i32(-1)}}},
		{{Type: typeConfigChange, ConfigChange: &configChangeRecord{ResourceType: resourceTopic, ResourceName: "a", Key: "retention.ms"}},
			{Type: typeConfigChange, ConfigChange: &configChangeRecord{ResourceType: resourceBroker, Key: "log.retention.ms", Value: new("5")}}},
		{{Type: typeProducerIDBlock, ProducerIDBlock: &producerIDBlockRecord{Broker: 101, First: 0, Size: 1000}}},
		// Invalid (unknown topic id): discarded whole, the create before it too.
		{{Type: typeCreateTopic, CreateTopic: &createTopicRecord{Name: "b", TopicID: topicB}},
			{Type: typeChangePartition, ChangePartition: &changePartitionRecord{TopicID: [16]byte{9}, Partition: 0, Leader: i32(1)}}},
		{{Type: typeDeleteTopic, DeleteTopic: &deleteTopicRecord{TopicID: topicA}}},
	}
}

func replay(t *testing.T, log [][]record, upTo int) *image.Image {
	t.Helper()
	img := image.New()
	for i, recs := range log[:upTo] {
		b, err := encodeEntry(0, recs)
		if err != nil {
			t.Fatal(err)
		}
		e, err := decodeEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		img, _ = applyEntry(img, uint64(i+1), e)
	}
	return img
}

func TestApplyIsDeterministic(t *testing.T) {
	log := testLog()
	for n := 1; n <= len(log); n++ {
		a, _ := image.Marshal(replay(t, log, n))
		b, _ := image.Marshal(replay(t, log, n))
		if !bytes.Equal(a, b) {
			t.Fatalf("after %d entries two replays differ:\n%s\n%s", n, a, b)
		}
	}
}

func TestApplySemantics(t *testing.T) {
	log := testLog()
	tests := []struct {
		name  string
		after int
		check func(*image.Image) bool
	}{
		{"cluster id set", 1, func(img *image.Image) bool { return img.ClusterID == "c1" && img.Controllers[1].Port == 9093 }},
		{"broker registered fenced with epoch = index", 2, func(img *image.Image) bool {
			b := img.Brokers[101]
			return b != nil && b.Fenced && b.Epoch == 2 && img.Index == 2
		}},
		{"unfenced", 3, func(img *image.Image) bool { return !img.Brokers[101].Fenced }},
		{"topic created", 4, func(img *image.Image) bool {
			p := img.Partition("a", 1)
			return p != nil && p.Leader == 101 && p.LeaderEpoch == 0 && img.Topics["a"].Configs["retention.ms"] == "1"
		}},
		{"leader change bumps both epochs, ISR kept", 5, func(img *image.Image) bool {
			p := img.Partition("a", 0)
			return img.Brokers[101].Fenced && p.Leader == -1 && p.LeaderEpoch == 1 && p.PartitionEpoch == 1 && slices.Equal(p.ISR, []int32{101})
		}},
		{"configs changed", 6, func(img *image.Image) bool {
			_, has := img.Topics["a"].Configs["retention.ms"]
			return !has && img.BrokerConfigs["log.retention.ms"] == "5"
		}},
		{"producer ids", 7, func(img *image.Image) bool { return img.NextProducerID == 1000 }},
		{"invalid entry discarded whole", 8, func(img *image.Image) bool { return img.Topics["b"] == nil && img.Index == 8 }},
		{"deleted", 9, func(img *image.Image) bool { return img.Topics["a"] == nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := replay(t, log, tc.after)
			if !tc.check(img) {
				b, _ := json.MarshalIndent(img, "", " ")
				t.Fatalf("unexpected image:\n%s", b)
			}
		})
	}
}

func TestElections(t *testing.T) {
	img := image.New()
	for _, id := range []int32{1, 2, 3} {
		img.Brokers[id] = &image.Broker{ID: id}
	}
	img.Topics["t"] = &image.Topic{Name: "t", ID: topicA, Partitions: []*image.Partition{
		{Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1},
		{Partition: 1, Replicas: []int32{2, 1}, ISR: []int32{1}, Leader: 1},
		{Partition: 2, Replicas: []int32{3, 2}, ISR: []int32{3, 2}, Leader: 3},
	}}
	img.Brokers[1].Fenced = true
	live := func(id int32) bool { return id != 1 }
	recs := fenceDecision(img, 1, live)
	after, err := applyEntry(img, 1, entry{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	p0, p1, p2 := after.Partition("t", 0), after.Partition("t", 1), after.Partition("t", 2)
	if p0.Leader != 2 || !slices.Equal(p0.ISR, []int32{2, 3}) || p0.LeaderEpoch != 1 {
		t.Errorf("p0: %+v", p0)
	}
	if p1.Leader != -1 || len(p1.ISR) != 0 || !slices.Equal(p1.ELR, []int32{1}) {
		t.Errorf("p1 (last ISR member fenced): %+v", p1)
	}
	if p2.PartitionEpoch != 0 {
		t.Errorf("p2 untouched: %+v", p2)
	}
	after = after.Clone() // images are immutable: modify a deep copy
	after.Brokers[1].Fenced = false
	recs = electLeaderless(after, func(int32) bool { return true })
	again, _ := applyEntry(after, 2, entry{Records: recs})
	if p := again.Partition("t", 1); p.Leader != 1 || p.LeaderEpoch != 2 {
		t.Errorf("p1 after unfence: %+v", p)
	}
}

func TestPlacement(t *testing.T) {
	brokers := []*image.Broker{{ID: 3, Rack: "b"}, {ID: 1, Rack: "a"}, {ID: 2, Rack: "a"}, {ID: 4, Rack: "b"}}
	if got := placementOrder(brokers); !slices.Equal(got, []int32{1, 3, 2, 4}) {
		t.Fatalf("rack-alternating order: %v", got)
	}
	got := placeReplicas(brokers, 0, 4, 2, 0)
	want := [][]int32{{1, 3}, {3, 2}, {2, 4}, {4, 1}}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("placement %v, want %v", got, want)
		}
	}
}

// TestDeltaWindowBounds: the window keeps at most maxWindowDeltas deltas and
// maxWindowBytes (but always the newest delta), starts where the dropped
// ones ended, serves from its start or any delta in it, refuses an index
// older or off the chain, and an answer holds at least one delta. A window
// published earlier is not changed by later pushes.
func TestDeltaWindowBounds(t *testing.T) {
	w := deltaWindow{start: 10}
	var early deltaWindow
	for i := range uint64(maxWindowDeltas + 100) {
		w = w.push(windowDelta{index: 11 + 2*i, batch: []byte{byte(i)}}) // gaps: only odd indexes
		if i == 50 {
			early = w
		}
	}
	if len(w.deltas) != maxWindowDeltas || w.start != 11+2*99 || w.bytes != maxWindowDeltas {
		t.Fatalf("window of %d deltas from %d, %d bytes; want %d from %d", len(w.deltas), w.start, w.bytes, maxWindowDeltas, 11+2*99)
	}
	if len(early.deltas) != 51 || early.start != 10 || early.deltas[0].batch[0] != 0 || early.deltas[50].batch[0] != 50 {
		t.Fatalf("an earlier window changed: %d deltas from %d", len(early.deltas), early.start)
	}
	last := w.deltas[len(w.deltas)-1].index
	for _, tc := range []struct {
		index uint64
		ok    bool
		n     int
	}{
		{w.start, true, maxWindowDeltas},
		{w.deltas[0].index, true, maxWindowDeltas - 1},
		{last - 2, true, 1},
		{last, true, 0},
		{w.start - 2, false, 0}, // older than the window
		{last - 1, false, 0},    // off the chain
		{0, false, 0},
	} {
		got, ok := w.after(tc.index, 1<<20)
		if ok != tc.ok || len(got) != tc.n {
			t.Errorf("after(%d): %d deltas, %v; want %d, %v", tc.index, len(got), ok, tc.n, tc.ok)
		}
	}
	if got, _ := w.after(w.start, 0); len(got) != 1 {
		t.Errorf("after with no room: %d deltas, want 1", len(got))
	}
	if got, _ := w.after(w.start, 10); len(got) != 10 {
		t.Errorf("after with room for 10: %d deltas", len(got))
	}

	big := deltaWindow{}
	for i := range uint64(3) {
		big = big.push(windowDelta{index: i + 1, batch: make([]byte, maxWindowBytes/2+1)})
	}
	if len(big.deltas) != 1 || big.start != 2 || big.bytes > maxWindowBytes {
		t.Fatalf("byte bound: %d deltas from %d, %d bytes", len(big.deltas), big.start, big.bytes)
	}
	// The two batches dropped passed the byte bound: the window moved to a
	// new array, which no longer references them.
	if big.dropped != 0 {
		t.Fatalf("%d dropped bytes still referenced", big.dropped)
	}
	held := big
	big = big.push(windowDelta{index: 4, batch: make([]byte, maxWindowBytes+1)})
	if len(big.deltas) != 1 || big.start != 3 || big.dropped != maxWindowBytes/2+1 {
		t.Fatalf("a delta over the byte bound: %d deltas from %d, %d dropped bytes; want it alone", len(big.deltas), big.start, big.dropped)
	}
	if held.start != 2 || len(held.deltas) != 1 || held.deltas[0].index != 3 {
		t.Fatalf("a held window changed: from %d, %d deltas", held.start, len(held.deltas))
	}
}

// TestFSMWindowRecordsOutcomes: the FSM's window holds one delta per
// applied command entry, chained by index over the gaps of other entries,
// with the entry's records when it was applied and none when it was
// discarded (undecodable, of another term, invalid); the deltas rebuild
// the FSM's image. Restore starts the window over at the snapshot.
func TestFSMWindowRecordsOutcomes(t *testing.T) {
	f := newFSM(hclog.NewNullLogger())
	log := testLog()
	enc := func(term uint64, recs []record) []byte {
		b, err := encodeEntry(term, recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, l := range []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: enc(1, log[0])},
		{Index: 3, Term: 1, Type: raft.LogCommand, Data: enc(1, log[1])},
		{Index: 4, Term: 2, Type: raft.LogNoop},
		{Index: 5, Term: 2, Type: raft.LogCommand, Data: []byte("{not json")},
		{Index: 6, Term: 2, Type: raft.LogCommand, Data: enc(1, log[2])}, // decided in term 1
		{Index: 7, Term: 2, Type: raft.LogCommand, Data: enc(2, log[7])}, // invalid
		{Index: 8, Term: 2, Type: raft.LogCommand, Data: enc(2, []record{{Type: typeUnfenceBroker,
			UnfenceBroker: &brokerEpochRecord{ID: 101, Epoch: 3}}})},
	} {
		f.Apply(l)
	}
	st := f.state.Load()
	raw, ok := st.window.after(st.window.start, 1<<20)
	if !ok || st.window.start != 0 {
		t.Fatalf("window from %d: %v", st.window.start, ok)
	}
	ups, err := metalog.DecodeUpdates(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range ups {
		got = append(got, fmt.Sprintf("%d<%d:%d", u.Index, u.Delta.PrevIndex, len(u.Delta.Records)))
	}
	want := []string{"2<0:2", "3<2:1", "5<3:0", "6<5:0", "7<6:0", "8<7:1"}
	if !slices.Equal(got, want) {
		t.Fatalf("deltas (index<prev:records) %v, want %v", got, want)
	}
	img, err := metalog.ApplyUpdates(image.New(), ups)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := image.Marshal(img)
	b, _ := image.Marshal(st.img)
	if !bytes.Equal(a, b) || img.Index != 8 || img.Brokers[101].Fenced {
		t.Fatalf("deltas rebuild\n%s\nthe FSM has\n%s", a, b)
	}

	snap, _ := image.Marshal(st.img)
	if err := f.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if w := f.state.Load().window; w.start != 8 || len(w.deltas) != 0 {
		t.Fatalf("window after Restore: from %d, %d deltas; want from 8, none", w.start, len(w.deltas))
	}
}

// TestDeltaWindowConcurrentReaders: handlers read published windows while
// the FSM goroutine appends to and drops from the shared backing array;
// every window read is a whole chain ending at its image (run with -race).
func TestDeltaWindowConcurrentReaders(t *testing.T) {
	f := newFSM(hclog.NewNullLogger())
	const entries = maxWindowDeltas + 500
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				st := f.state.Load()
				raw, ok := st.window.after(st.window.start, 1<<30)
				if !ok {
					errs <- fmt.Errorf("window from %d refuses its start", st.window.start)
					return
				}
				// Hold the window until the FSM published another: it
				// must not change.
				select {
				case <-st.changed:
				case <-done:
					return
				}
				if again, _ := st.window.after(st.window.start, 1<<30); !bytes.Equal(again, raw) {
					errs <- fmt.Errorf("window from %d changed while held", st.window.start)
					return
				}
				ups, err := metalog.DecodeUpdates(raw)
				if err != nil {
					errs <- err
					return
				}
				prev := st.window.start
				for _, u := range ups {
					if u.Delta.PrevIndex != prev {
						errs <- fmt.Errorf("delta %d onto %d, want onto %d", u.Index, u.Delta.PrevIndex, prev)
						return
					}
					prev = u.Index
				}
				if prev != st.img.Index {
					errs <- fmt.Errorf("window ends at %d, image at %d", prev, st.img.Index)
					return
				}
			}
		}()
	}
	for i := range uint64(entries) {
		b, err := encodeEntry(0, []record{{Type: typeProducerIDBlock,
			ProducerIDBlock: &producerIDBlockRecord{Broker: 1, First: int64(i) * 10, Size: 10}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp := f.Apply(&raft.Log{Index: 2*i + 1, Type: raft.LogCommand, Data: b}); resp != nil {
			t.Fatal(resp)
		}
	}
	close(done)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if st := f.state.Load(); len(st.window.deltas) != maxWindowDeltas || st.img.NextProducerID != entries*10 {
		t.Fatalf("window of %d deltas, next producer id %d", len(st.window.deltas), st.img.NextProducerID)
	}
}
