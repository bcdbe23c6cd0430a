package wire

import (
	"maps"
	"reflect"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrorResponse is req's answer when the whole request is refused with
// code (an authorization failure, NOT_CONTROLLER): the top-level error code
// where the response has one, and an entry with code (and msg, when not
// empty and the entry has a message) for each item of the request where
// answers are per item (topics, resources, ACLs, users, partitions).
func ErrorResponse(req kmsg.Request, code int16, message string) kmsg.Response {
	resp := req.ResponseKind()
	if f := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
		f.SetInt(int64(code))
	}
	var msg *string
	if message != "" {
		msg = &message
	}
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		out := resp.(*kmsg.CreateTopicsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage, rt.NumPartitions, rt.ReplicationFactor = t.Topic, code, msg, -1, -1
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.DeleteTopicsRequest:
		out := resp.(*kmsg.DeleteTopicsResponse)
		for _, name := range r.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = &name, code
			out.Topics = append(out.Topics, rt)
		}
		for _, t := range r.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.CreatePartitionsRequest:
		out := resp.(*kmsg.CreatePartitionsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, code, msg
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.IncrementalAlterConfigsRequest:
		out := resp.(*kmsg.IncrementalAlterConfigsResponse)
		for _, res := range r.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = res.ResourceType, res.ResourceName, code, msg
			out.Resources = append(out.Resources, rr)
		}
	case *kmsg.CreateACLsRequest:
		out := resp.(*kmsg.CreateACLsResponse)
		for range r.Creations {
			res := kmsg.NewCreateACLsResponseResult()
			res.ErrorCode, res.ErrorMessage = code, msg
			out.Results = append(out.Results, res)
		}
	case *kmsg.DeleteACLsRequest:
		out := resp.(*kmsg.DeleteACLsResponse)
		for range r.Filters {
			res := kmsg.NewDeleteACLsResponseResult()
			res.ErrorCode, res.ErrorMessage = code, msg
			out.Results = append(out.Results, res)
		}
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		out := resp.(*kmsg.AlterUserSCRAMCredentialsResponse)
		users := map[string]bool{}
		for _, d := range r.Deletions {
			users[d.Name] = true
		}
		for _, u := range r.Upsertions {
			users[u.Name] = true
		}
		for _, u := range slices.Sorted(maps.Keys(users)) {
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode, res.ErrorMessage = u, code, msg
			out.Results = append(out.Results, res)
		}
	case *kmsg.WriteTxnMarkersRequest:
		out := resp.(*kmsg.WriteTxnMarkersResponse)
		for _, m := range r.Markers {
			om := kmsg.NewWriteTxnMarkersResponseMarker()
			om.ProducerID = m.ProducerID
			for _, t := range m.Topics {
				ot := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				ot.Topic = t.Topic
				for _, p := range t.Partitions {
					op := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					op.Partition, op.ErrorCode = p, code
					ot.Partitions = append(ot.Partitions, op)
				}
				om.Topics = append(om.Topics, ot)
			}
			out.Markers = append(out.Markers, om)
		}
	case *kmsg.AlterPartitionAssignmentsRequest:
		out := resp.(*kmsg.AlterPartitionAssignmentsResponse)
		out.AllowReplicationFactorChange = r.AllowReplicationFactorChange
		for _, t := range r.Topics {
			rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, code, msg
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.ElectLeadersRequest:
		out := resp.(*kmsg.ElectLeadersResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
	}
	return resp
}
