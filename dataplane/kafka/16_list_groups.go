package kafka

// ListGroups (API key 16), versions 0-4: the groups this broker
// coordinates (clients ask every broker and merge). v4 filters by state
// (KIP-518, case-insensitive). While a __consumer_offsets partition led
// here is still loading, the groups known so far are listed with
// COORDINATOR_LOAD_IN_PROGRESS.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleListGroups(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.ListGroupsRequest)
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Version = r.Version
	if h.Groups == nil {
		return resp, nil
	}
	var states []string
	if r.Version >= 4 {
		states = r.StatesFilter
	}
	groups, code := h.Groups.ListGroups(states)
	resp.ErrorCode = code
	for _, g := range groups {
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState = g.Group, g.ProtocolType, g.State
		resp.Groups = append(resp.Groups, lg)
	}
	return resp, nil
}
