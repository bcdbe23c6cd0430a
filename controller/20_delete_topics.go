package controller

// DeleteTopics (key 20), v1-v6. v1-v5 name topics in TopicNames; v6 in
// Topics, by name or (when the name is null or empty) by id.
//
// Unknown name -> UNKNOWN_TOPIC_OR_PARTITION; unknown id -> UNKNOWN_TOPIC_ID;
// a topic named twice -> INVALID_REQUEST. Every deletion of a request goes
// into ONE Raft entry, answered once applied. Brokers delete the data when
// the topic leaves their image.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleDeleteTopics(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	for _, name := range r.TopicNames {
		targets = append(targets, target{name: kmsg.StringPtr(name)})
	}
	for _, t := range r.Topics {
		targets = append(targets, target{name: t.Topic, id: t.TopicID})
	}

	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	resolved := make([]*image.Topic, len(targets))
	seen := map[string]int{}
	for i, tg := range targets {
		var t *image.Topic
		if tg.name != nil && *tg.name != "" {
			t = img.Topics[*tg.name]
		} else {
			t = img.TopicByID(tg.id)
		}
		resolved[i] = t
		if t != nil {
			seen[t.Name]++
		}
	}
	var recs []record
	var deleted []int
	for i, tg := range targets {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = tg.name, tg.id
		t := resolved[i]
		switch {
		case t == nil && tg.name != nil && *tg.name != "":
			rt.ErrorCode, rt.ErrorMessage = kafkaError(errf(kerr.UnknownTopicOrPartition, "topic %q does not exist", *tg.name))
		case t == nil:
			rt.ErrorCode, rt.ErrorMessage = kafkaError(errf(kerr.UnknownTopicID, "topic id %s does not exist", uuidString(tg.id)))
		case seen[t.Name] > 1:
			rt.Topic, rt.TopicID = kmsg.StringPtr(t.Name), t.ID
			rt.ErrorCode, rt.ErrorMessage = kafkaError(errf(kerr.InvalidRequest, "topic %q is named more than once in the request", t.Name))
		default:
			rt.Topic, rt.TopicID = kmsg.StringPtr(t.Name), t.ID
			recs = append(recs, record{Type: typeDeleteTopic, DeleteTopic: &deleteTopicRecord{TopicID: t.ID}})
			deleted = append(deleted, i)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) == 0 {
		return resp
	}
	if _, err := c.propose(ls, recs); err != nil {
		code, msg := kafkaError(err)
		for _, i := range deleted {
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = code, msg
		}
		c.log.Warn("topic deletion failed", "error", err)
		return resp
	}
	for _, i := range deleted {
		c.log.Info("topic deleted", "topic", resolved[i].Name, "topic_id", uuidString(resolved[i].ID))
	}
	return resp
}
