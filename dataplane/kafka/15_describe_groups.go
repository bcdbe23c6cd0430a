package kafka

// DescribeGroups (API key 15), versions 0-5: served by the group
// coordinator, one answer per group. Members carry their metadata and
// assignment while the group is Stable; an unknown group is reported in
// state Dead without an error, as Kafka does. Authorized operations are
// not computed (-2147483648: not requested / unknown).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDescribeGroups(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	resp.Version = r.Version
	for _, id := range r.Groups {
		if h.Groups == nil {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode, g.AuthorizedOperations = id, kerr.CoordinatorNotAvailable.Code, -2147483648
			resp.Groups = append(resp.Groups, g)
			continue
		}
		resp.Groups = append(resp.Groups, h.Groups.DescribeGroup(id))
	}
	return resp, nil
}
