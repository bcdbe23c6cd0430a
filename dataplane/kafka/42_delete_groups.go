package kafka

// DeleteGroups (API key 42), versions 0-2: served by the group
// coordinator. Only Empty groups can be deleted (NON_EMPTY_GROUP
// otherwise); their offsets and metadata get tombstones in
// __consumer_offsets. An unknown group: GROUP_ID_NOT_FOUND.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDeleteGroups(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DeleteGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Version = r.Version
	if h.Groups == nil {
		for _, id := range r.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group, g.ErrorCode = id, kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, g)
		}
		return resp, nil
	}
	resp.Groups = h.Groups.DeleteGroups(ctx, r.Groups)
	return resp, nil
}
