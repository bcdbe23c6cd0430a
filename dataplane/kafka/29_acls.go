package kafka

// DescribeAcls (key 29, v0-v3), CreateAcls (key 30, v0-v3) and DeleteAcls
// (key 31, v0-v3).
//
//   - DescribeAcls is answered from this broker's image: the entries the
//     filter selects (authz.Filter), grouped by resource.
//   - CreateAcls and DeleteAcls are forwarded to the active controller,
//     which writes them to the metadata log; then the broker waits (bounded
//     by 5s) until its own image shows the change, so the client's next
//     DescribeAcls here sees it. Controller unreachable: every result gets
//     REQUEST_TIMED_OUT or NOT_CONTROLLER.
//   - With an authorizer, all three need the cluster resource: DESCRIBE for
//     DescribeAcls, ALTER for the other two (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/wire"
)

func (h *Handlers) handleDescribeACLs(_ context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DescribeACLsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
	f := authz.Filter{ResourceType: r.ResourceType, ResourceName: r.ResourceName, PatternType: r.ResourcePatternType,
		Principal: r.Principal, Host: r.Host, Operation: r.Operation, Permission: r.PermissionType}
	if r.Version == 0 {
		f.PatternType = kmsg.ACLResourcePatternTypeLiteral
	}
	type resource struct {
		rt      int8
		name    string
		pattern int8
	}
	index := map[resource]int{}
	for _, e := range h.image().ACLs {
		if !f.Matches(e) {
			continue
		}
		k := resource{e.ResourceType, e.ResourceName, e.PatternType}
		i, ok := index[k]
		if !ok {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName = kmsg.ACLResourceType(e.ResourceType), e.ResourceName
			res.ResourcePatternType = kmsg.ACLResourcePatternType(e.PatternType)
			i = len(resp.Resources)
			index[k] = i
			resp.Resources = append(resp.Resources, res)
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host = e.Principal, e.Host
		a.Operation, a.PermissionType = kmsg.ACLOperation(e.Operation), kmsg.ACLPermissionType(e.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
	}
	return resp, nil
}

func (h *Handlers) handleCreateACLs(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.CreateACLsRequest)
	version := r.Version
	fctx, cancel := context.WithTimeout(ctx, forwardTimeoutDefault)
	defer cancel()
	resp, err := h.forward(fctx, r)
	cr, ok := resp.(*kmsg.CreateACLsResponse)
	if err == nil && !ok {
		err = errUnexpectedResponse
	}
	if err != nil {
		h.dataLog().Warn("create ACLs: forwarding to the controller failed", "error", err)
		out := r.ResponseKind().(*kmsg.CreateACLsResponse)
		for range r.Creations {
			res := kmsg.NewCreateACLsResponseResult()
			res.ErrorCode, res.ErrorMessage = forwardErrorCode(err), stringPtr(err.Error())
			out.Results = append(out.Results, res)
		}
		return out, nil
	}
	cr.SetVersion(version)
	var want []image.ACL
	for i, c := range r.Creations {
		if i < len(cr.Results) && cr.Results[i].ErrorCode == 0 {
			want = append(want, image.ACL{ResourceType: int8(c.ResourceType), ResourceName: c.ResourceName,
				PatternType: int8(c.ResourcePatternType), Principal: c.Principal, Host: c.Host,
				Operation: int8(c.Operation), Permission: int8(c.PermissionType)})
			if version == 0 {
				want[len(want)-1].PatternType = int8(kmsg.ACLResourcePatternTypeLiteral)
			}
		}
	}
	h.waitACLs(fctx, func(img *image.Image) bool {
		for _, w := range want {
			found := false
			for _, e := range img.ACLs {
				found = found || e.SameBinding(w)
			}
			if !found {
				return false
			}
		}
		return true
	})
	return cr, nil
}

func (h *Handlers) handleDeleteACLs(ctx context.Context, req *wire.Request) (kmsg.Response, error) {
	r := req.Body.(*kmsg.DeleteACLsRequest)
	version := r.Version
	fctx, cancel := context.WithTimeout(ctx, forwardTimeoutDefault)
	defer cancel()
	resp, err := h.forward(fctx, r)
	dr, ok := resp.(*kmsg.DeleteACLsResponse)
	if err == nil && !ok {
		err = errUnexpectedResponse
	}
	if err != nil {
		h.dataLog().Warn("delete ACLs: forwarding to the controller failed", "error", err)
		out := r.ResponseKind().(*kmsg.DeleteACLsResponse)
		for range r.Filters {
			res := kmsg.NewDeleteACLsResponseResult()
			res.ErrorCode, res.ErrorMessage = forwardErrorCode(err), stringPtr(err.Error())
			out.Results = append(out.Results, res)
		}
		return out, nil
	}
	dr.SetVersion(version)
	var gone []image.ACL
	for _, res := range dr.Results {
		for _, m := range res.MatchingACLs {
			gone = append(gone, image.ACL{ResourceType: int8(m.ResourceType), ResourceName: m.ResourceName,
				PatternType: int8(m.ResourcePatternType), Principal: m.Principal, Host: m.Host,
				Operation: int8(m.Operation), Permission: int8(m.PermissionType)})
		}
	}
	h.waitACLs(fctx, func(img *image.Image) bool {
		for _, e := range img.ACLs {
			for _, g := range gone {
				if e.SameBinding(g) {
					return false
				}
			}
		}
		return true
	})
	return dr, nil
}

// waitACLs waits, bounded by adminWaitMax, until this broker's image
// satisfies cond (read your writes for DescribeAcls and the authorizer).
func (h *Handlers) waitACLs(ctx context.Context, cond func(*image.Image) bool) {
	wctx, cancel := context.WithTimeout(ctx, adminWaitMax)
	defer cancel()
	if _, ok := h.waitImage(wctx, cond); !ok {
		h.dataLog().Debug("ACL change: this broker's metadata is behind the controller's answer")
	}
}
