package controller

import (
	"maps"
	"slices"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
)

// The records of the Raft log and how they apply to an image live in
// controller/metalog, so that brokers can apply the same records as deltas.
// These aliases keep the controller's code short.
type (
	entry                      = metalog.Entry
	record                     = metalog.Change
	initClusterRecord          = metalog.InitClusterRecord
	registerControllerRecord   = metalog.RegisterControllerRecord
	unregisterControllerRecord = metalog.UnregisterControllerRecord
	registerBrokerRecord       = metalog.RegisterBrokerRecord
	brokerEpochRecord          = metalog.BrokerEpochRecord
	createTopicRecord          = metalog.CreateTopicRecord
	createPartitionRecord      = metalog.CreatePartitionRecord
	changePartitionRecord      = metalog.ChangePartitionRecord
	deleteTopicRecord          = metalog.DeleteTopicRecord
	configChangeRecord         = metalog.ConfigChangeRecord
	producerIDBlockRecord      = metalog.ProducerIDBlockRecord
)

const (
	typeInitCluster          = metalog.TypeInitCluster
	typeRegisterController   = metalog.TypeRegisterController
	typeUnregisterController = metalog.TypeUnregisterController
	typeRegisterBroker       = metalog.TypeRegisterBroker
	typeFenceBroker          = metalog.TypeFenceBroker
	typeUnfenceBroker        = metalog.TypeUnfenceBroker
	typeCreateTopic          = metalog.TypeCreateTopic
	typeCreatePartition      = metalog.TypeCreatePartition
	typeChangePartition      = metalog.TypeChangePartition
	typeDeleteTopic          = metalog.TypeDeleteTopic
	typeConfigChange         = metalog.TypeConfigChange
	typeProducerIDBlock      = metalog.TypeProducerIDBlock

	resourceTopic  = metalog.ResourceTopic
	resourceBroker = metalog.ResourceBroker
)

// encodeEntry encodes the records of one decision taken in Raft term term
// (0: unchecked).
func encodeEntry(term uint64, recs []record) ([]byte, error) { return metalog.EncodeEntry(term, recs) }

func decodeEntry(b []byte) (entry, error) { return metalog.DecodeEntry(b) }

// applyEntry is metalog.ApplyEntry, with every applied entry checked
// against the invariants in builds with the invariants tag (checkApplied).
func applyEntry(img *image.Image, index uint64, e entry) (*image.Image, error) {
	next, err := metalog.ApplyEntry(img, index, e)
	if err == nil {
		checkApplied(img, next)
	}
	return next, err
}

func cloneConfigs(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// Record constructors keep the call sites short.

// changeTo is the ChangePartition record taking p to st, and whether
// anything changes.
func changeTo(t *image.Topic, p *image.Partition, st partitionState) (record, bool) {
	x := &changePartitionRecord{TopicID: t.ID, Partition: p.Partition}
	changed := false
	if st.leader != p.Leader {
		x.Leader = &st.leader
		changed = true
	}
	list := func(to, from []int32) *[]int32 {
		if slices.Equal(to, from) {
			return nil
		}
		changed = true
		v := slices.Clone(to)
		if v == nil {
			v = []int32{}
		}
		return &v
	}
	x.ISR = list(st.isr, p.ISR)
	x.ELR = list(st.elr, p.ELR)
	x.LastKnownELR = list(st.lastKnownELR, p.LastKnownELR)
	if m := st.move; m != nil {
		if !slices.Equal(m.replicas, p.Replicas) {
			x.Replicas = slices.Clone(m.replicas)
			changed = true
		}
		x.Adding = list(m.adding, p.Adding)
		x.Removing = list(m.removing, p.Removing)
	}
	return record{Type: typeChangePartition, ChangePartition: x}, changed
}
