package metalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/skein-io/skein/controller/image"
)

// normalized returns a deep copy of img in which empty slices and maps are
// nil (the top-level maps empty, never nil): how a list or map was emptied
// (nil or empty, which the deep clone and JSON do not keep apart either)
// is not part of an image's value.
func normalized(img *image.Image) *image.Image {
	out := img.Clone()
	norm := func(s []int32) []int32 {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	for _, t := range out.Topics {
		if len(t.Configs) == 0 {
			t.Configs = nil
		}
		if len(t.Partitions) == 0 {
			t.Partitions = nil
		}
		for _, p := range t.Partitions {
			p.Replicas, p.ISR, p.ELR, p.LastKnownELR = norm(p.Replicas), norm(p.ISR), norm(p.ELR), norm(p.LastKnownELR)
			p.Adding, p.Removing = norm(p.Adding), norm(p.Removing)
		}
	}
	if len(out.BrokerConfigs) == 0 {
		out.BrokerConfigs = nil
	}
	if len(out.BrokerOverrides) == 0 {
		out.BrokerOverrides = nil
	}
	if out.Controllers == nil {
		out.Controllers = map[int32]image.Controller{}
	}
	if out.Brokers == nil {
		out.Brokers = map[int32]*image.Broker{}
	}
	if out.Topics == nil {
		out.Topics = map[string]*image.Topic{}
	}
	return out
}

func requireSameImage(t *testing.T, what string, got, want *image.Image) {
	t.Helper()
	g, w := normalized(got), normalized(want)
	if !reflect.DeepEqual(g, w) {
		gb, _ := json.MarshalIndent(g, "", " ")
		wb, _ := json.MarshalIndent(w, "", " ")
		t.Fatalf("%s: images differ:\n got %s\nwant %s", what, gb, wb)
	}
}

func marshal(t *testing.T, img *image.Image) []byte {
	t.Helper()
	b, err := image.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// step is one generated entry and what applying it gave.
type step struct {
	index, prev uint64
	entry       Entry
	applied     bool
	after       *image.Image
	afterJSON   []byte // image.Marshal(after) right after it was made
}

// runGenerated applies n generated entries (seed seed) with ApplyEntry and
// with the deep-clone reference, checking at every step that both agree
// (image and outcome) and that ApplyEntry kept the sharing contract.
// Indexes have gaps, as Raft's command entries do.
func runGenerated(t *testing.T, seed uint64, n int) []step {
	t.Helper()
	g := newEntryGen(seed)
	img, ref := image.New(), image.New()
	var steps []step
	applied := 0
	for i := range n {
		index := img.Index + 1 + uint64(g.rnd.IntN(3))
		e := g.entry(img)
		// Through JSON, as entries reach the FSM.
		b, err := EncodeEntry(uint64(i%3), e.Records)
		if err != nil {
			t.Fatal(err)
		}
		if e, err = DecodeEntry(b); err != nil {
			t.Fatal(err)
		}
		next, err := ApplyEntry(img, index, e)
		wantNext, wantErr := applyEntryDeepClone(ref, index, e)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("seed %d step %d: ApplyEntry error %v, deep-clone apply error %v", seed, i, err, wantErr)
		}
		requireSameImage(t, fmt.Sprintf("seed %d step %d (index %d)", seed, i, index), next, wantNext)
		checkSharing(t, img, next, e, err == nil)
		if err == nil {
			applied++
		}
		steps = append(steps, step{index: index, prev: img.Index, entry: e, applied: err == nil, after: next, afterJSON: marshal(t, next)})
		img, ref = next, wantNext
	}
	if applied < n/4 || applied == n {
		t.Fatalf("seed %d: %d of %d entries applied: the generator should make both kinds", seed, applied, n)
	}
	return steps
}

// checkSharing checks the contract of package image's "Sharing": what the
// entry does not name keeps its pointer; a discarded entry changes nothing
// but the index; the maps the entry does not write are the same maps.
func checkSharing(t *testing.T, before, after *image.Image, e Entry, applied bool) {
	t.Helper()
	samePtr := func(a, b any) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	topics := map[string]bool{}          // topic names the entry names
	parts := map[string]map[int32]bool{} // partitions it names, by topic name
	brokers := map[int32]bool{}          // brokers it names
	overrides := map[int32]bool{}        // brokers whose overrides it names
	writes := map[string]bool{}          // top-level maps it may write
	names := map[[16]byte]string{}       // topic ids of before and of the entry's creations
	created := map[string]bool{}         // topic names the entry creates (maybe after deleting them)
	for n, t := range before.Topics {
		names[t.ID] = n
	}
	for _, c := range e.Records {
		switch c.Type {
		case TypeRegisterController, TypeUnregisterController:
			writes["controllers"] = true
		case TypeRegisterBroker:
			if c.RegisterBroker != nil {
				brokers[c.RegisterBroker.ID], writes["brokers"] = true, true
			}
		case TypeFenceBroker, TypeUnfenceBroker:
			for _, x := range []*BrokerEpochRecord{c.FenceBroker, c.UnfenceBroker} {
				if x != nil {
					brokers[x.ID], writes["brokers"] = true, true
				}
			}
		case TypeCreateTopic:
			if c.CreateTopic != nil {
				topics[c.CreateTopic.Name], writes["topics"] = true, true
				created[c.CreateTopic.Name] = true
				names[c.CreateTopic.TopicID] = c.CreateTopic.Name
			}
		case TypeCreatePartition, TypeChangePartition, TypeDeleteTopic:
			writes["topics"] = true
			var id [16]byte
			switch {
			case c.CreatePartition != nil:
				id = c.CreatePartition.TopicID
			case c.ChangePartition != nil:
				id = c.ChangePartition.TopicID
				if n, ok := names[id]; ok {
					if parts[n] == nil {
						parts[n] = map[int32]bool{}
					}
					parts[n][c.ChangePartition.Partition] = true
				}
			case c.DeleteTopic != nil:
				id = c.DeleteTopic.TopicID
			}
			if n, ok := names[id]; ok {
				topics[n] = true
			}
		case TypeConfigChange:
			switch {
			case c.ConfigChange != nil && c.ConfigChange.ResourceType == ResourceTopic:
				topics[c.ConfigChange.ResourceName], writes["topics"] = true, true
			case c.ConfigChange != nil && c.ConfigChange.ResourceName != "":
				writes["broker_overrides"] = true
				if id, err := BrokerResourceID(c.ConfigChange.ResourceName); err == nil {
					overrides[id] = true
				}
			default:
				writes["broker_configs"] = true
			}
		}
	}
	if !applied {
		topics, parts, brokers, writes, overrides = nil, nil, nil, nil, nil
	}
	for n, bt := range before.Topics {
		at := after.Topics[n]
		if topics[n] || at == nil {
			if at != nil && !topics[n] {
				t.Fatalf("topic %q deleted by an entry that does not name it", n)
			}
			if at != nil && at != bt && !created[n] {
				for i, p := range bt.Partitions {
					if i < len(at.Partitions) && !parts[n][int32(i)] && at.Partitions[i] != p {
						t.Fatalf("topic %q partition %d not named by the entry got a new pointer", n, i)
					}
				}
			}
			continue
		}
		if at != bt {
			t.Fatalf("topic %q not named by the entry got a new pointer", n)
		}
	}
	for id, bb := range before.Brokers {
		if !brokers[id] && after.Brokers[id] != bb {
			t.Fatalf("broker %d not named by the entry got a new pointer", id)
		}
	}
	for id, m := range before.BrokerOverrides {
		if !overrides[id] && !samePtr(m, after.BrokerOverrides[id]) {
			t.Fatalf("overrides of broker %d not named by the entry got a new map", id)
		}
	}
	for _, m := range []struct {
		name        string
		before, aft any
	}{
		{"topics", before.Topics, after.Topics},
		{"brokers", before.Brokers, after.Brokers},
		{"controllers", before.Controllers, after.Controllers},
		{"broker_configs", before.BrokerConfigs, after.BrokerConfigs},
		{"broker_overrides", before.BrokerOverrides, after.BrokerOverrides},
	} {
		if !writes[m.name] && !samePtr(m.before, m.aft) {
			t.Fatalf("map %s copied by an entry that does not write it", m.name)
		}
	}
}

// TestApplyEntryMatchesDeepClone: for random sequences of valid and
// invalid entries, copy-on-write ApplyEntry gives, step by step, the image
// and outcome of the deep-clone algorithm it replaced; no image is
// modified after it was made; and a snapshot (JSON round trip) of the last
// image is the same image.
func TestApplyEntryMatchesDeepClone(t *testing.T) {
	for seed := range uint64(20) {
		steps := runGenerated(t, seed, 300)
		for i, s := range steps {
			if got := marshal(t, s.after); !bytes.Equal(got, s.afterJSON) {
				t.Fatalf("seed %d: image %d (index %d) was modified after it was made:\n now %s\nthen %s", seed, i, s.index, got, s.afterJSON)
			}
		}
		last := steps[len(steps)-1].after
		snap, err := image.Unmarshal(marshal(t, last))
		if err != nil {
			t.Fatal(err)
		}
		requireSameImage(t, "snapshot round trip", snap, last)
	}
}

// TestDeltasEqualSnapshot: a follower that loads a snapshot midway and then
// applies the encoded deltas (applied entries with their changes,
// discarded ones with none) in one Fetch answer ends with the image of one
// that loads the last snapshot; a delta that does not chain is refused.
func TestDeltasEqualSnapshot(t *testing.T) {
	for seed := range uint64(10) {
		steps := runGenerated(t, 100+seed, 200)
		mid := 50 + int(seed)*10
		snap, err := EncodeImage(steps[mid].after, 1)
		if err != nil {
			t.Fatal(err)
		}
		answer := snap
		for i, s := range steps[mid+1:] {
			var changes []Change
			if s.applied {
				changes = s.entry.Records
			}
			b, err := EncodeDelta(steps[mid+i].after, s.index, changes, 2)
			if err != nil {
				t.Fatal(err)
			}
			answer = append(answer, b...)
		}
		ups, err := DecodeUpdates(answer)
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) != len(steps)-mid || ups[0].Snapshot == nil || ups[1].Snapshot != nil {
			t.Fatalf("%d updates (first a snapshot %v, second %v), want %d, a snapshot then deltas",
				len(ups), ups[0].Snapshot != nil, ups[1].Snapshot != nil, len(steps)-mid)
		}
		got, err := ApplyUpdates(image.New(), ups)
		if err != nil {
			t.Fatal(err)
		}
		want := steps[len(steps)-1].after
		requireSameImage(t, "deltas after a snapshot", got, want)
		loaded, err := DecodeImage(must(EncodeImage(want, 3)))
		if err != nil {
			t.Fatal(err)
		}
		requireSameImage(t, "deltas vs last snapshot", got, loaded)

		// Deltas alone from the image they chain onto; a gap is refused.
		if _, err := ApplyUpdates(steps[mid].after, ups[1:]); err != nil {
			t.Fatal(err)
		}
		if _, err := ApplyUpdates(steps[mid].after, ups[2:]); err == nil || !errors.Is(err, ErrNotChained) {
			t.Fatalf("a delta after a gap: error %v, want ErrNotChained", err)
		}
		other := *steps[mid].after
		other.ClusterID = "another"
		if _, err := ApplyUpdates(&other, ups[1:]); err == nil || !errors.Is(err, ErrNotChained) {
			t.Fatalf("a delta onto another cluster's image: error %v, want ErrNotChained", err)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
