package metalog

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/skein-io/skein/controller/image"
)

// entryGen generates random entries against the current image: mostly
// valid ones covering every change type, some invalid (a wrong epoch, an
// unknown topic, a bad partition number, an ELR overlapping the ISR ...),
// and entries of several changes, some touching one topic or partition
// twice.
type entryGen struct {
	rnd    *rand.Rand
	topics int // topics created so far, for fresh names and ids
}

func newEntryGen(seed uint64) *entryGen {
	return &entryGen{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (g *entryGen) entry(img *image.Image) Entry {
	n := 1 + g.rnd.IntN(3)
	if g.rnd.IntN(10) == 0 {
		n += 5
	}
	var e Entry
	for range n {
		e.Records = append(e.Records, g.changes(img, e.Records)...)
	}
	return e
}

func (g *entryGen) pick(ids []int32) int32 {
	if len(ids) == 0 {
		return int32(g.rnd.IntN(6))
	}
	return ids[g.rnd.IntN(len(ids))]
}

// subset returns a random subset of ids in their order; never nil.
func (g *entryGen) subset(ids []int32) []int32 {
	out := []int32{}
	for _, id := range ids {
		if g.rnd.IntN(2) == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (g *entryGen) topicID(img *image.Image) ([16]byte, *image.Topic) {
	names := img.TopicNames()
	if len(names) == 0 || g.rnd.IntN(12) == 0 {
		return [16]byte{0xee, byte(g.rnd.IntN(256))}, nil // unknown
	}
	t := img.Topics[names[g.rnd.IntN(len(names))]]
	return t.ID, t
}

// changes returns one or a few changes (a topic creation comes with its
// partitions). earlier are the entry's changes so far: a creation in the
// same entry is not in img yet, so some changes use it.
func (g *entryGen) changes(img *image.Image, earlier []Change) []Change {
	brokers := img.BrokerIDs()
	switch k := g.rnd.IntN(100); {
	case k < 4:
		return []Change{{Type: TypeInitCluster, InitCluster: &InitClusterRecord{ClusterID: fmt.Sprintf("c%d", g.rnd.IntN(3))}}}
	case k < 8:
		return []Change{{Type: TypeRegisterController, RegisterController: &RegisterControllerRecord{
			ID: int32(g.rnd.IntN(4)), Host: "h", Port: int32(9000 + g.rnd.IntN(5))}}}
	case k < 10:
		return []Change{{Type: TypeUnregisterController, UnregisterController: &UnregisterControllerRecord{ID: int32(g.rnd.IntN(4))}}}
	case k < 18:
		rec := &RegisterBrokerRecord{
			ID: int32(g.rnd.IntN(7)) - 1, Incarnation: fmt.Sprint(g.rnd.IntN(1000)), Host: "b", Port: 9092, Rack: []string{"", "r1"}[g.rnd.IntN(2)]}
		// Records from before named listeners have none; others one or two.
		for i := range g.rnd.IntN(3) {
			rec.Listeners = append(rec.Listeners, image.Endpoint{Name: []string{"INTERNAL", "EXTERNAL"}[i], Host: "b", Port: int32(9092 + 1000*i)})
		}
		return []Change{{Type: TypeRegisterBroker, RegisterBroker: rec}}
	case k < 28:
		id := g.pick(brokers)
		epoch := int64(g.rnd.IntN(5))
		if b := img.Brokers[id]; b != nil && g.rnd.IntN(5) > 0 {
			epoch = b.Epoch
		}
		x := &BrokerEpochRecord{ID: id, Epoch: epoch}
		if g.rnd.IntN(2) == 0 {
			return []Change{{Type: TypeFenceBroker, FenceBroker: x}}
		}
		return []Change{{Type: TypeUnfenceBroker, UnfenceBroker: x}}
	case k < 40:
		g.topics++
		name := fmt.Sprintf("t%d", g.topics)
		id := [16]byte{byte(g.topics), byte(g.topics >> 8), 1}
		if g.rnd.IntN(15) == 0 && len(img.Topics) > 0 {
			name = img.TopicNames()[0] // exists: invalid
		}
		if g.rnd.IntN(20) == 0 {
			id = [16]byte{} // zero: invalid
		}
		var configs map[string]string
		if g.rnd.IntN(3) == 0 {
			configs = map[string]string{"retention.ms": fmt.Sprint(g.rnd.IntN(100))}
		}
		out := []Change{{Type: TypeCreateTopic, CreateTopic: &CreateTopicRecord{Name: name, TopicID: id, Configs: configs}}}
		for p := range 1 + g.rnd.IntN(4) {
			out = append(out, g.createPartition(id, int32(p), brokers))
		}
		return out
	case k < 45:
		id, t := g.topicID(img)
		n := int32(0)
		if t != nil {
			n = int32(len(t.Partitions))
		}
		if g.rnd.IntN(8) == 0 {
			n += 2 // not the next partition: invalid
		}
		return []Change{g.createPartition(id, n, brokers)}
	case k < 75:
		id, t := g.topicID(img)
		// Sometimes a topic created earlier in this entry.
		for _, c := range earlier {
			if c.Type == TypeCreateTopic && g.rnd.IntN(3) == 0 {
				id, t = c.CreateTopic.TopicID, nil
			}
		}
		x := &ChangePartitionRecord{TopicID: id}
		replicas := []int32{0, 1, 2}
		if t != nil && len(t.Partitions) > 0 {
			p := t.Partitions[g.rnd.IntN(len(t.Partitions))]
			x.Partition, replicas = p.Partition, p.Replicas
		}
		if g.rnd.IntN(15) == 0 {
			x.Partition = 99 // no such partition: invalid
		}
		if g.rnd.IntN(2) == 0 {
			l := int32(-1)
			if g.rnd.IntN(4) > 0 {
				l = g.pick(replicas)
			}
			x.Leader = &l
		}
		isr := g.subset(replicas)
		if g.rnd.IntN(2) == 0 {
			x.ISR = &isr
		}
		if g.rnd.IntN(6) == 0 {
			x.Replicas = slices.Clone(replicas)
			slices.Reverse(x.Replicas)
		}
		if g.rnd.IntN(3) == 0 {
			elr := []int32{}
			for _, r := range replicas {
				if !slices.Contains(isr, r) && (g.rnd.IntN(2) == 0 || g.rnd.IntN(10) == 0) {
					elr = append(elr, r)
				}
			}
			if g.rnd.IntN(10) == 0 && len(isr) > 0 {
				elr = append(elr, isr[0]) // overlaps the ISR: invalid if the ISR is set
			}
			x.ELR = &elr
			lk := g.subset(replicas)
			x.LastKnownELR = &lk
		}
		if g.rnd.IntN(5) == 0 {
			// A reassignment's adding/removing sets: sometimes
			// overlapping (invalid), sometimes emptied.
			adding, removing := g.subset(replicas), g.subset(replicas)
			if g.rnd.IntN(3) > 0 {
				removing = slices.DeleteFunc(removing, func(r int32) bool { return slices.Contains(adding, r) })
			}
			x.Adding, x.Removing = &adding, &removing
		}
		return []Change{{Type: TypeChangePartition, ChangePartition: x}}
	case k < 80:
		id, _ := g.topicID(img)
		return []Change{{Type: TypeDeleteTopic, DeleteTopic: &DeleteTopicRecord{TopicID: id}}}
	case k < 92:
		x := &ConfigChangeRecord{ResourceType: ResourceTopic, Key: []string{"retention.ms", "segment.ms"}[g.rnd.IntN(2)]}
		if g.rnd.IntN(3) == 0 {
			x.ResourceType = ResourceBroker
			x.Key = "log.retention.ms"
			switch g.rnd.IntN(10) {
			case 0:
				x.ResourceName = "x1" // not a broker id: invalid
			case 1, 2, 3:
				x.ResourceName = fmt.Sprint(g.pick(brokers)) // per-broker
				x.Key = []string{"leader.replication.throttled.rate", "follower.replication.throttled.rate"}[g.rnd.IntN(2)]
			}
		} else if names := img.TopicNames(); len(names) > 0 && g.rnd.IntN(10) > 0 {
			x.ResourceName = names[g.rnd.IntN(len(names))]
		} else {
			x.ResourceName = "missing"
		}
		if g.rnd.IntN(20) == 0 {
			x.ResourceType = 7 // invalid
		}
		if g.rnd.IntN(3) > 0 {
			v := fmt.Sprint(g.rnd.IntN(1000))
			x.Value = &v
		}
		return []Change{{Type: TypeConfigChange, ConfigChange: x}}
	case k < 97:
		first := img.NextProducerID
		if g.rnd.IntN(6) == 0 {
			first++ // not the next id: invalid
		}
		return []Change{{Type: TypeProducerIDBlock, ProducerIDBlock: &ProducerIDBlockRecord{Broker: g.pick(brokers), First: first, Size: 1000}}}
	case k < 97+1 && g.rnd.IntN(2) == 0 && len(img.ACLs) > 0:
		id := img.ACLs[g.rnd.IntN(len(img.ACLs))].ID
		if g.rnd.IntN(6) == 0 {
			id = "missing" // invalid
		}
		return []Change{{Type: TypeDeleteACL, DeleteACL: &DeleteACLRecord{ID: id}}}
	case k < 98:
		if g.rnd.IntN(2) == 0 {
			return []Change{{Type: "Bogus"}}
		}
		return []Change{{Type: TypeCreateACL, CreateACL: &image.ACL{ID: fmt.Sprintf("acl-%d", g.rnd.IntN(20)),
			ResourceType: 2, ResourceName: "t", PatternType: 3, Principal: "User:u", Host: "*", Operation: 3, Permission: 3}}}
	default:
		return []Change{{Type: TypeChangePartition}} // body missing
	}
}

func (g *entryGen) createPartition(id [16]byte, p int32, brokers []int32) Change {
	replicas := []int32{}
	for _, b := range brokers {
		if g.rnd.IntN(2) == 0 {
			replicas = append(replicas, b)
		}
	}
	if len(replicas) == 0 && g.rnd.IntN(5) > 0 {
		replicas = []int32{0, 1}
	}
	leader := int32(-1)
	if len(replicas) > 0 {
		leader = replicas[0]
	}
	return Change{Type: TypeCreatePartition, CreatePartition: &CreatePartitionRecord{
		TopicID: id, Partition: p, Replicas: replicas, ISR: slices.Clone(replicas), Leader: leader,
		LeaderEpoch: int32(g.rnd.IntN(3)), PartitionEpoch: int32(g.rnd.IntN(3)),
	}}
}
