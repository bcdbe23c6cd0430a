package controller

// Authorization of the controller's APIs (Config.Authorizer), over the
// ACLs of the controller's own image:
//
//   - what brokers and other controllers send (the metadata Fetch,
//     BrokerRegistration, BrokerHeartbeat, AlterPartition,
//     AllocateProducerIds, ControllerRegistration) needs CLUSTER_ACTION on
//     the cluster;
//   - admin requests (CreateTopics, DeleteTopics, CreatePartitions,
//     ElectLeaders, IncrementalAlterConfigs, reassignments, ACLs, Raft
//     voters) are forwarded by brokers, which authorized the client
//     themselves, so CLUSTER_ACTION (a broker's) is enough; an admin client
//     talking to a controller directly needs ALTER on the cluster, or
//     DESCRIBE for the read-only ones (DescribeQuorum,
//     ListPartitionReassignments).
//
// A refused request is answered with CLUSTER_AUTHORIZATION_FAILED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/wire"
)

// controllerOps is, per API key, the cluster operation besides
// CLUSTER_ACTION that allows it (ACLOperationUnknown: none).
var controllerOps = map[int16]kmsg.ACLOperation{
	1:  kmsg.ACLOperationUnknown, // the metadata log: brokers and controllers only
	19: kmsg.ACLOperationAlter,
	20: kmsg.ACLOperationAlter,
	30: kmsg.ACLOperationAlter,
	31: kmsg.ACLOperationAlter,
	37: kmsg.ACLOperationAlter,
	43: kmsg.ACLOperationAlter,
	44: kmsg.ACLOperationAlter,
	45: kmsg.ACLOperationAlter,
	46: kmsg.ACLOperationDescribe,
	51: kmsg.ACLOperationAlter, // AlterUserScramCredentials: ALTER on the cluster, as Kafka
	55: kmsg.ACLOperationDescribe,
	56: kmsg.ACLOperationUnknown,
	62: kmsg.ACLOperationUnknown,
	63: kmsg.ACLOperationUnknown,
	67: kmsg.ACLOperationUnknown,
	70: kmsg.ACLOperationUnknown,
	80: kmsg.ACLOperationAlter,
	81: kmsg.ACLOperationAlter,
}

// authorizer is the controller's authorizer, nil when it is off.
func (c *Controller) authorizer() *authz.Authorizer {
	if !c.cfg.Authorizer {
		return nil
	}
	return authz.New(authz.Config{SuperUsers: c.cfg.SuperUsers, AllowIfNoACL: c.cfg.AllowEveryoneIfNoACL},
		func() []image.ACL { return c.fsm.current().ACLs })
}

// authorizedRegistry registers each handler behind the check of its key.
type authorizedRegistry struct {
	a *authz.Authorizer
	r *wire.Registry
}

func (ar authorizedRegistry) Register(key, minVersion, maxVersion int16, h wire.HandlerFunc) {
	op, checked := controllerOps[key]
	if ar.a == nil || !checked {
		ar.r.Register(key, minVersion, maxVersion, h)
		return
	}
	a := ar.a
	ar.r.Register(key, minVersion, maxVersion, func(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
		host := req.Host()
		if a.Allowed(req.Principal, host, kmsg.ACLOperationClusterAction, kmsg.ACLResourceTypeCluster, authz.ClusterName) ||
			(op != kmsg.ACLOperationUnknown && a.Allowed(req.Principal, host, op, kmsg.ACLResourceTypeCluster, authz.ClusterName)) {
			return h(ctx, req)
		}
		return authz.Denied(req.Body, kerr.ClusterAuthorizationFailed.Code), nil
	})
}
