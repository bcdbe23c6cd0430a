package metalog

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/skein-io/skein/controller/image"
)

// Errors of ApplyEntry (wrapped).
var (
	ErrMissingBody    = errors.New("record body missing")
	ErrUnknownTopicID = errors.New("unknown topic id")
)

// ApplyEntry returns the image after the entry at Raft index index: a new
// image; img itself is not modified. It is a pure function of its input (the
// controllers' FSM and the brokers applying deltas get the same image from
// the same input). An entry with an invalid change is discarded whole: the
// returned image then differs from img only by its Index, and the error
// says why.
//
// The result shares with img everything the entry does not change (package
// image's "Sharing"): the cost is proportional to the entry, plus one copy
// of each top-level map the entry writes to (Topics, Brokers, Controllers,
// BrokerConfigs, BrokerOverrides and the per-broker map changed) and, when the entry names topics by id, one pass over the
// topics to index them. An unchanged topic, partition or broker keeps its
// pointer; a changed one is a new value, and so is every topic holding a
// changed partition.
func ApplyEntry(img *image.Image, index uint64, e Entry) (*image.Image, error) {
	next := *img
	a := applier{img: &next, index: index}
	for i := range e.Records {
		if err := a.apply(&e.Records[i]); err != nil {
			skipped := *img
			skipped.Index = index
			return &skipped, fmt.Errorf("entry %d record %d (%s): %w", index, i, e.Records[i].Type, err)
		}
	}
	next.Index = index
	return &next, nil
}

// applier applies the changes of one entry to img, a shallow copy of the
// input image, copying on first write what it modifies. What it has copied
// (and so owns, and may modify in place) is recorded, so that an entry of
// many changes copies each map, topic, partition and broker at most once.
type applier struct {
	img   *image.Image
	index uint64

	controllersOwned, brokersOwned, topicsOwned, brokerConfigsOwned, overridesOwned bool
	// ownedOverrides are the brokers whose BrokerOverrides map is this
	// applier's own.
	ownedOverrides map[int32]bool
	// ownedTopics are topics copied (or created) by this applier: their
	// struct and Partitions slice are its own.
	ownedTopics map[*image.Topic]bool
	// ownedConfigs are owned topics whose Configs map is its own too.
	ownedConfigs    map[*image.Topic]bool
	ownedPartitions map[*image.Partition]bool
	ownedBrokers    map[*image.Broker]bool
	// names maps topic ids to names, built on the first lookup by id
	// (image.TopicByID is a linear scan) and kept up to date.
	names map[[16]byte]string
}

func (a *applier) controllers() map[int32]image.Controller {
	if !a.controllersOwned {
		a.img.Controllers = maps.Clone(a.img.Controllers)
		if a.img.Controllers == nil {
			a.img.Controllers = map[int32]image.Controller{}
		}
		a.controllersOwned = true
	}
	return a.img.Controllers
}

func (a *applier) brokers() map[int32]*image.Broker {
	if !a.brokersOwned {
		a.img.Brokers = maps.Clone(a.img.Brokers)
		if a.img.Brokers == nil {
			a.img.Brokers = map[int32]*image.Broker{}
		}
		a.brokersOwned = true
		a.ownedBrokers = map[*image.Broker]bool{}
	}
	return a.img.Brokers
}

func (a *applier) topics() map[string]*image.Topic {
	if !a.topicsOwned {
		a.img.Topics = maps.Clone(a.img.Topics)
		if a.img.Topics == nil {
			a.img.Topics = map[string]*image.Topic{}
		}
		a.topicsOwned = true
		a.ownedTopics = map[*image.Topic]bool{}
		a.ownedConfigs = map[*image.Topic]bool{}
		a.ownedPartitions = map[*image.Partition]bool{}
	}
	return a.img.Topics
}

// topicByID returns the topic with that id in the image being built, or nil.
func (a *applier) topicByID(id [16]byte) *image.Topic {
	if a.names == nil {
		a.names = make(map[[16]byte]string, len(a.img.Topics))
		for name, t := range a.img.Topics {
			a.names[t.ID] = name
		}
	}
	name, ok := a.names[id]
	if !ok {
		return nil
	}
	return a.img.Topics[name]
}

// writeTopic returns the topic named name (which must exist) as a copy this
// applier owns, replacing it in the image being built.
func (a *applier) writeTopic(name string) *image.Topic {
	ts := a.topics()
	t := ts[name]
	if a.ownedTopics[t] {
		return t
	}
	c := *t
	c.Partitions = slices.Clone(t.Partitions) // the same partitions, a new slice
	ts[name] = &c
	a.ownedTopics[&c] = true
	return &c
}

// writePartition returns partition i of t (a topic from writeTopic) as a
// copy this applier owns, replacing it in t. Slice fields are shared with
// the original: they are only ever replaced, never modified in place.
func (a *applier) writePartition(t *image.Topic, i int) *image.Partition {
	p := t.Partitions[i]
	if a.ownedPartitions[p] {
		return p
	}
	c := *p
	t.Partitions[i] = &c
	a.ownedPartitions[&c] = true
	return &c
}

func (a *applier) writeBroker(id int32) *image.Broker {
	bs := a.brokers()
	b := bs[id]
	if a.ownedBrokers[b] {
		return b
	}
	c := *b
	bs[id] = &c
	a.ownedBrokers[&c] = true
	return &c
}

func (a *applier) apply(r *Change) error {
	switch r.Type {
	case TypeInitCluster:
		if r.InitCluster == nil {
			return ErrMissingBody
		}
		if a.img.ClusterID != "" {
			return fmt.Errorf("cluster id already set to %q", a.img.ClusterID)
		}
		a.img.ClusterID = r.InitCluster.ClusterID
	case TypeRegisterController:
		x := r.RegisterController
		if x == nil {
			return ErrMissingBody
		}
		a.controllers()[x.ID] = image.Controller{ID: x.ID, Host: x.Host, Port: x.Port}
	case TypeUnregisterController:
		x := r.UnregisterController
		if x == nil {
			return ErrMissingBody
		}
		if _, ok := a.img.Controllers[x.ID]; !ok {
			return fmt.Errorf("controller %d is not registered", x.ID)
		}
		delete(a.controllers(), x.ID)
	case TypeRegisterBroker:
		x := r.RegisterBroker
		if x == nil {
			return ErrMissingBody
		}
		if x.ID < 0 {
			return fmt.Errorf("broker id %d", x.ID)
		}
		b := &image.Broker{ID: x.ID, Incarnation: x.Incarnation, Epoch: int64(a.index),
			Host: x.Host, Port: x.Port, Listeners: slices.Clone(x.Listeners), Rack: x.Rack, Fenced: true}
		a.brokers()[x.ID] = b
		a.ownedBrokers[b] = true
	case TypeFenceBroker, TypeUnfenceBroker:
		x := r.FenceBroker
		if r.Type == TypeUnfenceBroker {
			x = r.UnfenceBroker
		}
		if x == nil {
			return ErrMissingBody
		}
		b := a.img.Brokers[x.ID]
		if b == nil || b.Epoch != x.Epoch {
			return fmt.Errorf("broker %d epoch %d is not registered", x.ID, x.Epoch)
		}
		if fenced := r.Type == TypeFenceBroker; b.Fenced != fenced {
			a.writeBroker(x.ID).Fenced = fenced
		}
	case TypeCreateTopic:
		x := r.CreateTopic
		if x == nil {
			return ErrMissingBody
		}
		if a.img.Topics[x.Name] != nil {
			return fmt.Errorf("topic %q exists", x.Name)
		}
		if x.TopicID == ([16]byte{}) || a.topicByID(x.TopicID) != nil {
			return fmt.Errorf("topic id of %q is zero or taken", x.Name)
		}
		t := &image.Topic{Name: x.Name, ID: x.TopicID, Configs: cloneConfigs(x.Configs)}
		a.topics()[x.Name] = t
		a.ownedTopics[t] = true
		a.ownedConfigs[t] = true
		a.names[x.TopicID] = x.Name // built by topicByID above
	case TypeCreatePartition:
		x := r.CreatePartition
		if x == nil {
			return ErrMissingBody
		}
		t := a.topicByID(x.TopicID)
		if t == nil {
			return ErrUnknownTopicID
		}
		if int(x.Partition) != len(t.Partitions) || len(x.Replicas) == 0 {
			return fmt.Errorf("topic %q: cannot add partition %d with %d replicas", t.Name, x.Partition, len(x.Replicas))
		}
		t = a.writeTopic(t.Name)
		p := &image.Partition{
			Partition: x.Partition, Replicas: slices.Clone(x.Replicas), ISR: slices.Clone(x.ISR),
			Leader: x.Leader, LeaderEpoch: x.LeaderEpoch, PartitionEpoch: x.PartitionEpoch,
		}
		t.Partitions = append(t.Partitions, p)
		a.ownedPartitions[p] = true
	case TypeChangePartition:
		x := r.ChangePartition
		if x == nil {
			return ErrMissingBody
		}
		t := a.topicByID(x.TopicID)
		if t == nil {
			return ErrUnknownTopicID
		}
		if x.Partition < 0 || int(x.Partition) >= len(t.Partitions) {
			return fmt.Errorf("topic %q has no partition %d", t.Name, x.Partition)
		}
		t = a.writeTopic(t.Name)
		p := a.writePartition(t, int(x.Partition))
		if x.Leader != nil && *x.Leader != p.Leader {
			p.Leader = *x.Leader
			p.LeaderEpoch++
		}
		if x.ISR != nil {
			p.ISR = slices.Clone(*x.ISR)
		}
		if x.Replicas != nil {
			p.Replicas = slices.Clone(x.Replicas)
		}
		if x.ELR != nil {
			p.ELR = slices.Clone(*x.ELR)
		}
		if x.LastKnownELR != nil {
			p.LastKnownELR = slices.Clone(*x.LastKnownELR)
		}
		if x.Adding != nil {
			p.Adding = nonEmpty(*x.Adding)
		}
		if x.Removing != nil {
			p.Removing = nonEmpty(*x.Removing)
		}
		for _, r := range p.Adding {
			if !slices.Contains(p.Replicas, r) || slices.Contains(p.Removing, r) {
				return fmt.Errorf("topic %q partition %d: adding %v / removing %v not disjoint within replicas %v",
					t.Name, p.Partition, p.Adding, p.Removing, p.Replicas)
			}
		}
		for _, r := range p.Removing {
			if !slices.Contains(p.Replicas, r) {
				return fmt.Errorf("topic %q partition %d: removing %v not within replicas %v",
					t.Name, p.Partition, p.Removing, p.Replicas)
			}
		}
		for _, r := range p.ELR {
			if !slices.Contains(p.Replicas, r) || slices.Contains(p.ISR, r) {
				return fmt.Errorf("topic %q partition %d: ELR %v not disjoint from ISR %v within replicas %v",
					t.Name, p.Partition, p.ELR, p.ISR, p.Replicas)
			}
		}
		p.PartitionEpoch++
	case TypeDeleteTopic:
		x := r.DeleteTopic
		if x == nil {
			return ErrMissingBody
		}
		t := a.topicByID(x.TopicID)
		if t == nil {
			return ErrUnknownTopicID
		}
		delete(a.topics(), t.Name)
		delete(a.names, x.TopicID)
	case TypeConfigChange:
		x := r.ConfigChange
		if x == nil {
			return ErrMissingBody
		}
		var m map[string]string
		switch x.ResourceType {
		case ResourceTopic:
			if a.img.Topics[x.ResourceName] == nil {
				return fmt.Errorf("unknown topic %q", x.ResourceName)
			}
			t := a.writeTopic(x.ResourceName)
			if !a.ownedConfigs[t] {
				t.Configs = maps.Clone(t.Configs)
				if t.Configs == nil {
					t.Configs = map[string]string{}
				}
				a.ownedConfigs[t] = true
			}
			m = t.Configs
		case ResourceBroker:
			if x.ResourceName != "" {
				id, err := BrokerResourceID(x.ResourceName)
				if err != nil {
					return err
				}
				a.brokerOverride(id, x.Key, x.Value)
				return nil
			}
			if !a.brokerConfigsOwned {
				a.img.BrokerConfigs = maps.Clone(a.img.BrokerConfigs)
				if a.img.BrokerConfigs == nil {
					a.img.BrokerConfigs = map[string]string{}
				}
				a.brokerConfigsOwned = true
			}
			m = a.img.BrokerConfigs
		default:
			return fmt.Errorf("resource type %d", x.ResourceType)
		}
		if x.Value == nil {
			delete(m, x.Key)
		} else {
			m[x.Key] = *x.Value
		}
	case TypeProducerIDBlock:
		x := r.ProducerIDBlock
		if x == nil {
			return ErrMissingBody
		}
		if x.First != a.img.NextProducerID || x.Size <= 0 {
			return fmt.Errorf("block [%d,+%d) does not start at the next producer id %d", x.First, x.Size, a.img.NextProducerID)
		}
		a.img.NextProducerID = x.First + int64(x.Size)
	case TypeCreateACL:
		x := r.CreateACL
		if x == nil {
			return ErrMissingBody
		}
		if x.ID == "" {
			return errors.New("ACL without an id")
		}
		for _, e := range a.img.ACLs {
			if e.ID == x.ID {
				return fmt.Errorf("ACL id %s exists", x.ID)
			}
		}
		// A new slice: the previous image keeps its own.
		acls := make([]image.ACL, len(a.img.ACLs), len(a.img.ACLs)+1)
		copy(acls, a.img.ACLs)
		a.img.ACLs = append(acls, *x)
	case TypeDeleteACL:
		x := r.DeleteACL
		if x == nil {
			return ErrMissingBody
		}
		i := slices.IndexFunc(a.img.ACLs, func(e image.ACL) bool { return e.ID == x.ID })
		if i < 0 {
			return fmt.Errorf("no ACL with id %s", x.ID)
		}
		a.img.ACLs = slices.Delete(slices.Clone(a.img.ACLs), i, i+1)
		if len(a.img.ACLs) == 0 {
			a.img.ACLs = nil // as a snapshot without any loads
		}
	default:
		return fmt.Errorf("unknown record type %q", r.Type)
	}
	return nil
}

// brokerOverride sets (value non-nil) or deletes key in broker id's
// overrides, copying BrokerOverrides and the broker's map on first write; a
// broker left without overrides loses its entry. Deleting what is not set
// copies nothing.
func (a *applier) brokerOverride(id int32, key string, value *string) {
	if value == nil {
		if _, ok := a.img.BrokerOverrides[id][key]; !ok {
			return
		}
	}
	if !a.overridesOwned {
		a.img.BrokerOverrides = maps.Clone(a.img.BrokerOverrides)
		if a.img.BrokerOverrides == nil {
			a.img.BrokerOverrides = map[int32]map[string]string{}
		}
		a.overridesOwned = true
		a.ownedOverrides = map[int32]bool{}
	}
	m := a.img.BrokerOverrides[id]
	if !a.ownedOverrides[id] {
		m = maps.Clone(m)
		if m == nil {
			m = map[string]string{}
		}
		a.img.BrokerOverrides[id] = m
		a.ownedOverrides[id] = true
	}
	if value == nil {
		delete(m, key)
		if len(m) == 0 {
			delete(a.img.BrokerOverrides, id)
			delete(a.ownedOverrides, id)
		}
		return
	}
	m[key] = *value
}

// BrokerResourceID reads the name of a per-broker config resource: a broker
// id in canonical decimal form, >= 0.
func BrokerResourceID(name string) (int32, error) {
	n, err := strconv.ParseInt(name, 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != name {
		return 0, fmt.Errorf("broker resource name %q is not a broker id", name)
	}
	return int32(n), nil
}

// nonEmpty is a copy of v, nil when v is empty (an image's Adding and
// Removing are nil when no reassignment is in progress).
func nonEmpty(v []int32) []int32 {
	if len(v) == 0 {
		return nil
	}
	return slices.Clone(v)
}

func cloneConfigs(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}
