package image

import (
	"encoding/json"
	"fmt"
)

// Marshal encodes an image as JSON: the form of Raft snapshots and of the
// metadata the controllers serve to brokers.
func Marshal(img *Image) ([]byte, error) {
	b, err := json.Marshal(img)
	if err != nil {
		return nil, fmt.Errorf("encode metadata image: %w", err)
	}
	return b, nil
}

// Unmarshal decodes an image encoded by Marshal. Maps left out of the JSON
// come back empty, never nil, so readers need no nil checks; a topic or
// partition that is nil or mis-numbered is an error.
func Unmarshal(b []byte) (*Image, error) {
	img := New()
	if err := json.Unmarshal(b, img); err != nil {
		return nil, fmt.Errorf("decode metadata image: %w", err)
	}
	if img.Controllers == nil {
		img.Controllers = map[int32]Controller{}
	}
	if img.Brokers == nil {
		img.Brokers = map[int32]*Broker{}
	}
	if img.Topics == nil {
		img.Topics = map[string]*Topic{}
	}
	if img.BrokerConfigs == nil {
		img.BrokerConfigs = map[string]string{}
	}
	if img.BrokerOverrides == nil {
		img.BrokerOverrides = map[int32]map[string]string{}
	}
	for id, m := range img.BrokerOverrides {
		if len(m) == 0 {
			delete(img.BrokerOverrides, id)
		}
	}
	for user, m := range img.ScramUsers {
		if len(m) == 0 {
			delete(img.ScramUsers, user)
		}
	}
	for id, b := range img.Brokers {
		if b == nil || b.ID != id {
			return nil, fmt.Errorf("decode metadata image: broker %d is malformed", id)
		}
	}
	for name, t := range img.Topics {
		if t == nil || t.Name != name {
			return nil, fmt.Errorf("decode metadata image: topic %q is malformed", name)
		}
		for i, p := range t.Partitions {
			if p == nil || p.Partition != int32(i) {
				return nil, fmt.Errorf("decode metadata image: topic %q partition %d is malformed", name, i)
			}
		}
	}
	return img, nil
}
