package controller

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

// registry lists the Kafka APIs a controller serves. ApiVersions is built
// in; Fetch of the metadata topic is served by every voter from its own
// image; everything else only by the active controller (other voters
// forward it there, or answer NOT_CONTROLLER: quorum.go). One file per API key holds each handler.
func (c *Controller) registry() *wire.Registry {
	r := authorizedRegistry{c.authorizer(), wire.NewRegistry()}
	r.Register(1, fetchMinVersion, fetchMaxVersion, c.handleFetch)
	r.Register(19, 2, 7, c.leaderOnly(c.handleCreateTopics))
	r.Register(20, 1, 6, c.leaderOnly(c.handleDeleteTopics))
	r.Register(30, 0, 3, c.leaderOnly(c.handleCreateACLs))
	r.Register(31, 0, 3, c.leaderOnly(c.handleDeleteACLs))
	r.Register(37, 0, 3, c.leaderOnly(c.handleCreatePartitions))
	r.Register(43, 0, 2, c.leaderOnly(c.handleElectLeaders))
	r.Register(44, 0, 1, c.leaderOnly(c.handleIncrementalAlterConfigs))
	r.Register(45, 0, 1, c.leaderOnly(c.handleAlterPartitionReassignments))
	r.Register(46, 0, 0, c.leaderOnly(c.handleListPartitionReassignments))
	r.Register(56, 0, 3, c.leaderOnly(c.handleAlterPartition))
	r.Register(62, 0, 4, c.leaderOnly(c.handleBrokerRegistration))
	r.Register(63, 0, 2, c.leaderOnly(c.handleBrokerHeartbeat))
	r.Register(67, 0, 0, c.leaderOnly(c.handleAllocateProducerIDs))
	// The quorum (quorum.go).
	r.Register(55, 0, 2, c.leaderOnly(c.handleDescribeQuorum))
	r.Register(70, 0, 0, c.leaderOnly(c.handleControllerRegistration))
	r.Register(80, 0, 1, c.leaderOnly(c.handleAddRaftVoter))
	r.Register(81, 0, 0, c.leaderOnly(c.handleRemoveRaftVoter))
	return r.r
}

// leaderHandler serves a request on the active controller, for the term ls.
type leaderHandler func(ctx context.Context, ls *leaderState, req *wire.Request) kmsg.Response

func (c *Controller) leaderOnly(h leaderHandler) wire.HandlerFunc {
	return func(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
		ls := c.active.Load()
		if ls == nil {
			return c.forwardToActive(ctx, req), nil
		}
		return h(ctx, ls, req), nil
	}
}
