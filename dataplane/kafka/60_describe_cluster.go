package kafka

// DescribeCluster (API key 60), versions 0-2, served from this broker's image.
//
//   - Brokers: the unfenced brokers; v2 with IncludeFencedBrokers: every
//     registered broker, IsFenced set for the fenced ones; each at its
//     address on the listener the request came in on, and without the
//     brokers that have no listener of that name (as Metadata); ControllerID: this broker (admin
//     requests sent to it are forwarded, see 03_metadata.go); ClusterID.
//   - v1 EndpointType: a broker answers for endpoint type 1 (brokers); a
//     request for controller endpoints (2) gets MISMATCHED_ENDPOINT_TYPE,
//     as from a Kafka broker (KIP-919).
//   - ClusterAuthorizedOperations: -2147483648 (not computed).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

// endpointTypeBrokers is DescribeCluster's EndpointType for broker listeners.
const endpointTypeBrokers = 1

func (h *Handlers) handleDescribeCluster(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	describeCluster(resp, h.image(), h.Config.NodeID, req.Listener, r)
	return resp, nil
}

func describeCluster(resp *kmsg.DescribeClusterResponse, img *image.Image, nodeID int32, listener string, r *kmsg.DescribeClusterRequest) {
	resp.EndpointType = endpointTypeBrokers
	resp.ClusterAuthorizedOperations = authorizedOperationsOmitted
	if r.Version >= 1 && r.EndpointType != endpointTypeBrokers {
		resp.ErrorCode = kerr.MismatchedEndpointType.Code
		resp.ErrorMessage = stringPtr("this is a broker: it describes broker endpoints only (type 1)")
		return
	}
	resp.ClusterID = img.ClusterID
	resp.ControllerID = nodeID
	for _, id := range img.BrokerIDs() {
		b := img.Brokers[id]
		if b.Fenced && (r.Version < 2 || !r.IncludeFencedBrokers) {
			continue
		}
		host, port, ok := b.Endpoint(listener)
		if !ok {
			continue
		}
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.ID, host, port
		rb.IsFenced = b.Fenced
		rb.Rack = leaderBroker{b}.rack()
		resp.Brokers = append(resp.Brokers, rb)
	}
}
