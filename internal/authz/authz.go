// Package authz is Skein's authorizer: Kafka's ACL model (the
// StandardAuthorizer's rules) over the access control entries of the
// metadata image.
//
// A request by principal P from host H to do operation O on resource R is:
//   - allowed when P is a super user;
//   - denied when a DENY entry matches (P or User:*, H or *, O or ALL, and
//     R: its literal name, the literal wildcard "*", or a prefix);
//   - allowed when an ALLOW entry matches the same way, where ALLOW on
//     READ, WRITE, DELETE or ALTER also allows DESCRIBE, and ALLOW on
//     ALTER_CONFIGS also allows DESCRIBE_CONFIGS;
//   - otherwise allowed only when no entry at all names R (for any
//     principal) and allow.everyone.if.no.acl.found is set.
//
// The entries are read from the current image on every check, so an ACL
// change applies to connected clients at their next request.
package authz

import (
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
	"github.com/skein-io/skein/internal/wire"
)

// ClusterName is the name of the cluster resource ("kafka-cluster").
const ClusterName = "kafka-cluster"

// Anonymous is the principal of a connection that did not authenticate.
const Anonymous = "User:ANONYMOUS"

// Denied is the answer to req refused whole with an authorization error
// code (CLUSTER_AUTHORIZATION_FAILED, ...): wire.ErrorResponse with a
// message that says so.
func Denied(req kmsg.Request, code int16) kmsg.Response {
	return wire.ErrorResponse(req, code, "not authorized: "+kerr.ErrorForCode(code).Error())
}

// Config configures an Authorizer.
type Config struct {
	// SuperUsers are allowed everything (Kafka's super.users).
	SuperUsers []string
	// AllowIfNoACL is allow.everyone.if.no.acl.found.
	AllowIfNoACL bool
}

// Authorizer checks requests against the ACLs of the image ACLs returns.
// A nil *Authorizer allows everything (no authorizer configured).
type Authorizer struct {
	cfg   Config
	super map[string]bool
	acls  func() []image.ACL
	index atomic.Pointer[index]
}

// New returns an authorizer reading the current entries from acls.
func New(cfg Config, acls func() []image.ACL) *Authorizer {
	a := &Authorizer{cfg: cfg, super: map[string]bool{}, acls: acls}
	for _, u := range cfg.SuperUsers {
		if u = strings.TrimSpace(u); u != "" {
			a.super[u] = true
		}
	}
	return a
}

// Enabled says whether requests are checked at all.
func (a *Authorizer) Enabled() bool { return a != nil }

// Allowed says whether principal, connected from host, may do op on the
// resource of type rt named name.
func (a *Authorizer) Allowed(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if a == nil || a.super[principal] {
		return true
	}
	matched := a.lookup().matching(rt, name)
	if len(matched) == 0 {
		return a.cfg.AllowIfNoACL
	}
	allowed := false
	for _, e := range matched {
		if !principalMatches(e.Principal, principal) || (e.Host != "*" && e.Host != host) {
			continue
		}
		eop := kmsg.ACLOperation(e.Operation)
		switch kmsg.ACLPermissionType(e.Permission) {
		case kmsg.ACLPermissionTypeDeny:
			if eop == op || eop == kmsg.ACLOperationAll {
				return false
			}
		case kmsg.ACLPermissionTypeAllow:
			allowed = allowed || implies(eop, op)
		}
	}
	return allowed
}

// AllowedAny says whether principal may do op on at least one resource of
// type rt (Kafka's authorizeByResourceType: an idempotent producer needs
// WRITE on some topic). A prefixed or literal ALLOW counts unless a DENY
// on the same pattern, or a wildcard DENY, cancels it.
func (a *Authorizer) AllowedAny(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	if a == nil || a.super[principal] {
		return true
	}
	ix := a.lookup()
	denied := map[patternKey]bool{}
	var allows []patternKey
	for _, e := range ix.all {
		if kmsg.ACLResourceType(e.ResourceType) != rt || !principalMatches(e.Principal, principal) ||
			(e.Host != "*" && e.Host != host) {
			continue
		}
		k := patternKey{e.PatternType, e.ResourceName}
		eop := kmsg.ACLOperation(e.Operation)
		switch kmsg.ACLPermissionType(e.Permission) {
		case kmsg.ACLPermissionTypeDeny:
			if eop == op || eop == kmsg.ACLOperationAll {
				denied[k] = true
			}
		case kmsg.ACLPermissionTypeAllow:
			if implies(eop, op) {
				allows = append(allows, k)
			}
		}
	}
	if denied[patternKey{int8(kmsg.ACLResourcePatternTypeLiteral), "*"}] {
		return false
	}
	for _, k := range allows {
		if !denied[k] {
			return true
		}
	}
	return false
}

type patternKey struct {
	pattern int8
	name    string
}

func principalMatches(aclPrincipal, principal string) bool {
	return aclPrincipal == principal || aclPrincipal == "User:*"
}

// implies says whether an ALLOW on granted allows op.
func implies(granted, op kmsg.ACLOperation) bool {
	if granted == op || granted == kmsg.ACLOperationAll {
		return true
	}
	switch op {
	case kmsg.ACLOperationDescribe:
		switch granted {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// index groups the entries of one image by resource for the checks.
type index struct {
	all []image.ACL
	// literal by (type, name), "*" included; prefixed by type.
	literal  map[literalKey][]image.ACL
	prefixed map[kmsg.ACLResourceType][]image.ACL
}

type literalKey struct {
	rt   kmsg.ACLResourceType
	name string
}

// lookup returns the index of the current entries, rebuilt when they
// changed (a change always makes a new slice: image.Image.ACLs).
func (a *Authorizer) lookup() *index {
	acls := a.acls()
	if ix := a.index.Load(); ix != nil && sameSlice(ix.all, acls) {
		return ix
	}
	ix := &index{all: acls, literal: map[literalKey][]image.ACL{}, prefixed: map[kmsg.ACLResourceType][]image.ACL{}}
	for _, e := range acls {
		rt := kmsg.ACLResourceType(e.ResourceType)
		switch kmsg.ACLResourcePatternType(e.PatternType) {
		case kmsg.ACLResourcePatternTypeLiteral:
			k := literalKey{rt, e.ResourceName}
			ix.literal[k] = append(ix.literal[k], e)
		case kmsg.ACLResourcePatternTypePrefixed:
			ix.prefixed[rt] = append(ix.prefixed[rt], e)
		}
	}
	a.index.Store(ix)
	return ix
}

func sameSlice(a, b []image.ACL) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

// matching is every entry naming the resource: literally, by the literal
// wildcard, or by a prefix of its name.
func (ix *index) matching(rt kmsg.ACLResourceType, name string) []image.ACL {
	var out []image.ACL
	out = append(out, ix.literal[literalKey{rt, name}]...)
	if name != "*" {
		out = append(out, ix.literal[literalKey{rt, "*"}]...)
	}
	for _, e := range ix.prefixed[rt] {
		if strings.HasPrefix(name, e.ResourceName) {
			out = append(out, e)
		}
	}
	return out
}
