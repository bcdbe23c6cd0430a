package controller

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiError is a Kafka error code with a message for the response.
type apiError struct {
	code *kerr.Error
	msg  string
}

func (e *apiError) Error() string { return e.code.Message + ": " + e.msg }

func errf(code *kerr.Error, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// kafkaError maps any error to the Kafka code and message to answer with:
// the one table from internal errors to codes.
func kafkaError(err error) (int16, *string) {
	var ae *apiError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ae):
		return ae.code.Code, &ae.msg
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrAbortedByRestore), errors.Is(err, errStaleTerm):
		msg := "this controller is not (or no longer) the active controller: " + err.Error()
		return kerr.NotController.Code, &msg
	case errors.Is(err, raft.ErrEnqueueTimeout):
		msg := "timed out writing to the metadata log"
		return kerr.RequestTimedOut.Code, &msg
	default:
		msg := err.Error()
		return kerr.UnknownServerError.Code, &msg
	}
}

// notControllerResponse answers req with NOT_CONTROLLER in every error code
// it has, for requests that only the active controller serves.
func notControllerResponse(req kmsg.Request) kmsg.Response {
	code := kerr.NotController.Code
	resp := req.ResponseKind()
	switch r := req.(type) {
	case *kmsg.BrokerRegistrationRequest:
		resp.(*kmsg.BrokerRegistrationResponse).ErrorCode = code
	case *kmsg.BrokerHeartbeatRequest:
		resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode = code
	case *kmsg.AllocateProducerIDsRequest:
		resp.(*kmsg.AllocateProducerIDsResponse).ErrorCode = code
	case *kmsg.CreateTopicsRequest:
		out := resp.(*kmsg.CreateTopicsResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.DeleteTopicsRequest:
		out := resp.(*kmsg.DeleteTopicsResponse)
		for _, name := range r.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(name), code
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
			rt.Topic, rt.ErrorCode = t.Topic, code
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.ElectLeadersRequest:
		out := resp.(*kmsg.ElectLeadersResponse)
		out.ErrorCode = code
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
	case *kmsg.DescribeQuorumRequest:
		resp.(*kmsg.DescribeQuorumResponse).ErrorCode = code
	case *kmsg.AlterPartitionRequest:
		resp.(*kmsg.AlterPartitionResponse).ErrorCode = code
	case *kmsg.ControllerRegistrationRequest:
		resp.(*kmsg.ControllerRegistrationResponse).ErrorCode = code
	case *kmsg.AddRaftVoterRequest:
		resp.(*kmsg.AddRaftVoterResponse).ErrorCode = code
	case *kmsg.RemoveRaftVoterRequest:
		resp.(*kmsg.RemoveRaftVoterResponse).ErrorCode = code
	case *kmsg.AlterPartitionAssignmentsRequest:
		out := resp.(*kmsg.AlterPartitionAssignmentsResponse)
		out.ErrorCode = code
		out.AllowReplicationFactorChange = r.AllowReplicationFactorChange
		for _, t := range r.Topics {
			rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			out.Topics = append(out.Topics, rt)
		}
	case *kmsg.ListPartitionReassignmentsRequest:
		resp.(*kmsg.ListPartitionReassignmentsResponse).ErrorCode = code
	case *kmsg.IncrementalAlterConfigsRequest:
		out := resp.(*kmsg.IncrementalAlterConfigsResponse)
		for _, res := range r.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode = res.ResourceType, res.ResourceName, code
			out.Resources = append(out.Resources, rr)
		}
	}
	return resp
}

// errStaleTerm discards an entry decided in another controller term than
// the one it was written in: its decision read an image that may lack the
// entries of the terms in between.
var errStaleTerm = errors.New("entry decided in another controller term")
