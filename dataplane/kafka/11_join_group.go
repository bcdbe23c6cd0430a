package kafka

// JoinGroup (API key 11), versions 0-9: served by the group coordinator
// (dataplane/group), which answers NOT_COORDINATOR for groups whose
// __consumer_offsets partition this broker does not lead. v4+ members
// joining without a member id get MEMBER_ID_REQUIRED and a generated id
// (KIP-394); v5+ carry group.instance.id (static membership, KIP-345).

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleJoinGroup(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.JoinGroupRequest)
	if h.Groups == nil {
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.Version, resp.ErrorCode, resp.Generation = r.Version, kerr.CoordinatorNotAvailable.Code, -1
		return resp, nil
	}
	return h.Groups.JoinGroup(ctx, r, req.Header.ClientID, clientHost(req)), nil
}

// clientHost is the client's address as DescribeGroups reports it ("/ip").
func clientHost(req *wire.Request) string {
	if req.Conn == nil || req.Conn.Conn == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(req.Conn.RemoteAddr().String())
	if err != nil {
		return ""
	}
	return "/" + host
}
