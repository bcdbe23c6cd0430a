package metalog

import (
	"fmt"
	"slices"

	"github.com/skein-io/skein/controller/image"
)

// applyEntryDeepClone is ApplyEntry as it was before copy-on-write: deep
// clone the whole image, then modify the clone in place. It is the
// reference the equivalence test and the benchmark compare against; keep
// it as it is.
func applyEntryDeepClone(img *image.Image, index uint64, e Entry) (*image.Image, error) {
	next := img.Clone()
	a := refApplier{img: next, index: index}
	for i := range e.Records {
		if err := a.apply(&e.Records[i]); err != nil {
			skipped := *img
			skipped.Index = index
			return &skipped, fmt.Errorf("entry %d record %d (%s): %w", index, i, e.Records[i].Type, err)
		}
	}
	next.Index = index
	return next, nil
}

type refApplier struct {
	img   *image.Image
	index uint64
}

func (a *refApplier) apply(r *Change) error {
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
		a.img.Controllers[x.ID] = image.Controller{ID: x.ID, Host: x.Host, Port: x.Port}
	case TypeUnregisterController:
		x := r.UnregisterController
		if x == nil {
			return ErrMissingBody
		}
		if _, ok := a.img.Controllers[x.ID]; !ok {
			return fmt.Errorf("controller %d is not registered", x.ID)
		}
		delete(a.img.Controllers, x.ID)
	case TypeRegisterBroker:
		x := r.RegisterBroker
		if x == nil {
			return ErrMissingBody
		}
		if x.ID < 0 {
			return fmt.Errorf("broker id %d", x.ID)
		}
		a.img.Brokers[x.ID] = &image.Broker{ID: x.ID, Incarnation: x.Incarnation, Epoch: int64(a.index),
			Host: x.Host, Port: x.Port, Listeners: append([]image.Endpoint(nil), x.Listeners...), Rack: x.Rack, Fenced: true}
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
		b.Fenced = r.Type == TypeFenceBroker
	case TypeCreateTopic:
		x := r.CreateTopic
		if x == nil {
			return ErrMissingBody
		}
		if a.img.Topics[x.Name] != nil {
			return fmt.Errorf("topic %q exists", x.Name)
		}
		if x.TopicID == ([16]byte{}) || a.img.TopicByID(x.TopicID) != nil {
			return fmt.Errorf("topic id of %q is zero or taken", x.Name)
		}
		a.img.Topics[x.Name] = &image.Topic{Name: x.Name, ID: x.TopicID, Configs: cloneConfigs(x.Configs)}
	case TypeCreatePartition:
		x := r.CreatePartition
		if x == nil {
			return ErrMissingBody
		}
		t := a.img.TopicByID(x.TopicID)
		if t == nil {
			return ErrUnknownTopicID
		}
		if int(x.Partition) != len(t.Partitions) || len(x.Replicas) == 0 {
			return fmt.Errorf("topic %q: cannot add partition %d with %d replicas", t.Name, x.Partition, len(x.Replicas))
		}
		t.Partitions = append(t.Partitions, &image.Partition{
			Partition: x.Partition, Replicas: slices.Clone(x.Replicas), ISR: slices.Clone(x.ISR),
			Leader: x.Leader, LeaderEpoch: x.LeaderEpoch, PartitionEpoch: x.PartitionEpoch,
		})
	case TypeChangePartition:
		x := r.ChangePartition
		if x == nil {
			return ErrMissingBody
		}
		t := a.img.TopicByID(x.TopicID)
		if t == nil {
			return ErrUnknownTopicID
		}
		if x.Partition < 0 || int(x.Partition) >= len(t.Partitions) {
			return fmt.Errorf("topic %q has no partition %d", t.Name, x.Partition)
		}
		p := t.Partitions[x.Partition]
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
		for _, r := range p.ELR {
			if !slices.Contains(p.Replicas, r) || slices.Contains(p.ISR, r) {
				return fmt.Errorf("topic %q partition %d: ELR %v not disjoint from ISR %v within replicas %v",
					t.Name, p.Partition, p.ELR, p.ISR, p.Replicas)
			}
		}
		if x.Adding != nil {
			p.Adding = nil
			if len(*x.Adding) > 0 {
				p.Adding = slices.Clone(*x.Adding)
			}
		}
		if x.Removing != nil {
			p.Removing = nil
			if len(*x.Removing) > 0 {
				p.Removing = slices.Clone(*x.Removing)
			}
		}
		for _, r := range p.Adding {
			if !slices.Contains(p.Replicas, r) || slices.Contains(p.Removing, r) {
				return fmt.Errorf("adding %v / removing %v within replicas %v", p.Adding, p.Removing, p.Replicas)
			}
		}
		for _, r := range p.Removing {
			if !slices.Contains(p.Replicas, r) {
				return fmt.Errorf("removing %v within replicas %v", p.Removing, p.Replicas)
			}
		}
		p.PartitionEpoch++
	case TypeDeleteTopic:
		x := r.DeleteTopic
		if x == nil {
			return ErrMissingBody
		}
		t := a.img.TopicByID(x.TopicID)
		if t == nil {
			return ErrUnknownTopicID
		}
		delete(a.img.Topics, t.Name)
	case TypeConfigChange:
		x := r.ConfigChange
		if x == nil {
			return ErrMissingBody
		}
		var m map[string]string
		switch x.ResourceType {
		case ResourceTopic:
			t := a.img.Topics[x.ResourceName]
			if t == nil {
				return fmt.Errorf("unknown topic %q", x.ResourceName)
			}
			if t.Configs == nil {
				t.Configs = map[string]string{}
			}
			m = t.Configs
		case ResourceBroker:
			if x.ResourceName != "" {
				id, err := BrokerResourceID(x.ResourceName)
				if err != nil {
					return err
				}
				if a.img.BrokerOverrides == nil {
					a.img.BrokerOverrides = map[int32]map[string]string{}
				}
				if x.Value != nil {
					if a.img.BrokerOverrides[id] == nil {
						a.img.BrokerOverrides[id] = map[string]string{}
					}
					a.img.BrokerOverrides[id][x.Key] = *x.Value
				} else if m := a.img.BrokerOverrides[id]; m != nil {
					delete(m, x.Key)
					if len(m) == 0 {
						delete(a.img.BrokerOverrides, id)
					}
				}
				return nil
			}
			if a.img.BrokerConfigs == nil {
				a.img.BrokerConfigs = map[string]string{}
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
		if r.CreateACL == nil {
			return ErrMissingBody
		}
		if r.CreateACL.ID == "" || slices.ContainsFunc(a.img.ACLs, func(e image.ACL) bool { return e.ID == r.CreateACL.ID }) {
			return fmt.Errorf("bad ACL id %q", r.CreateACL.ID)
		}
		a.img.ACLs = append(a.img.ACLs, *r.CreateACL)
	case TypeDeleteACL:
		if r.DeleteACL == nil {
			return ErrMissingBody
		}
		i := slices.IndexFunc(a.img.ACLs, func(e image.ACL) bool { return e.ID == r.DeleteACL.ID })
		if i < 0 {
			return fmt.Errorf("no ACL %s", r.DeleteACL.ID)
		}
		a.img.ACLs = slices.Delete(a.img.ACLs, i, i+1)
		if len(a.img.ACLs) == 0 {
			a.img.ACLs = nil // as a snapshot without any loads
		}
	default:
		return fmt.Errorf("unknown record type %q", r.Type)
	}
	return nil
}
