package controller

// CreateAcls (key 30, v0-v3) and DeleteAcls (key 31, v0-v3): access
// control entries live in the metadata log (metalog.TypeCreateACL,
// TypeDeleteACL) and reach every broker's authorizer with the image.
//
// CreateAcls: each creation is checked (authz.ValidBinding: INVALID_REQUEST
// with the reason); an entry binding exactly what an existing one binds is
// answered without a new record (Kafka's idempotent creation). Every valid
// creation of a request goes into one Raft entry. DeleteAcls: each filter
// selects entries (authz.Filter); all the entries matched by any filter go
// in one Raft entry, and each filter's answer lists what it matched.
// Authorization of these requests is the broker's (it forwards them here).

import (
	"context"
	"slices"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/controller/metalog"
	"github.com/skein-io/skein/internal/authz"
	"github.com/skein-io/skein/internal/wire"
)

func (c *Controller) handleCreateACLs(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	var recs []record
	var created []int
	pending := slices.Clone(img.ACLs)
	for _, cr := range r.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		e := image.ACL{ResourceType: int8(cr.ResourceType), ResourceName: cr.ResourceName,
			PatternType: int8(cr.ResourcePatternType), Principal: cr.Principal, Host: cr.Host,
			Operation: int8(cr.Operation), Permission: int8(cr.PermissionType)}
		if r.Version == 0 {
			e.PatternType = int8(kmsg.ACLResourcePatternTypeLiteral)
		}
		if why := authz.ValidBinding(e); why != "" {
			res.ErrorCode = kerr.InvalidRequest.Code
			res.ErrorMessage = &why
			resp.Results = append(resp.Results, res)
			continue
		}
		exists := false
		for _, old := range pending {
			exists = exists || old.SameBinding(e)
		}
		if !exists {
			e.ID = uuid.NewString()
			pending = append(pending, e)
			x := e
			recs = append(recs, record{Type: metalog.TypeCreateACL, CreateACL: &x})
			created = append(created, len(resp.Results))
		}
		resp.Results = append(resp.Results, res)
	}
	if len(recs) == 0 {
		return resp
	}
	if _, err := c.propose(ls, recs); err != nil {
		code, msg := kafkaError(err)
		for _, i := range created {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, msg
		}
		c.log.Warn("ACL creation failed", "error", err)
		return resp
	}
	for _, rec := range recs {
		e := rec.CreateACL
		c.log.Info("ACL created", "principal", e.Principal, "host", e.Host,
			"operation", kmsg.ACLOperation(e.Operation).String(), "permission", kmsg.ACLPermissionType(e.Permission).String(),
			"resource_type", kmsg.ACLResourceType(e.ResourceType).String(), "resource", e.ResourceName,
			"pattern", kmsg.ACLResourcePatternType(e.PatternType).String(), "id", e.ID)
	}
	return resp
}

func (c *Controller) handleDeleteACLs(_ context.Context, ls *leaderState, req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	c.decideMu.Lock()
	defer c.decideMu.Unlock()
	img := c.fsm.current()
	deleted := map[string]bool{}
	var recs []record
	for _, f := range r.Filters {
		fr := kmsg.NewDeleteACLsResponseResult()
		filter := authz.Filter{ResourceType: f.ResourceType, ResourceName: f.ResourceName, PatternType: f.ResourcePatternType,
			Principal: f.Principal, Host: f.Host, Operation: f.Operation, Permission: f.PermissionType}
		if r.Version == 0 {
			filter.PatternType = kmsg.ACLResourcePatternTypeLiteral
		}
		for _, e := range img.ACLs {
			if !filter.Matches(e) {
				continue
			}
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName = kmsg.ACLResourceType(e.ResourceType), e.ResourceName
			m.ResourcePatternType = kmsg.ACLResourcePatternType(e.PatternType)
			m.Principal, m.Host = e.Principal, e.Host
			m.Operation, m.PermissionType = kmsg.ACLOperation(e.Operation), kmsg.ACLPermissionType(e.Permission)
			fr.MatchingACLs = append(fr.MatchingACLs, m)
			if !deleted[e.ID] {
				deleted[e.ID] = true
				recs = append(recs, record{Type: metalog.TypeDeleteACL, DeleteACL: &metalog.DeleteACLRecord{ID: e.ID}})
			}
		}
		resp.Results = append(resp.Results, fr)
	}
	if len(recs) == 0 {
		return resp
	}
	if _, err := c.propose(ls, recs); err != nil {
		code, msg := kafkaError(err)
		for i := range resp.Results {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, msg
			resp.Results[i].MatchingACLs = nil
		}
		c.log.Warn("ACL deletion failed", "error", err)
		return resp
	}
	c.log.Info("ACLs deleted", "count", len(recs))
	return resp
}
