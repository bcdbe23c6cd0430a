package authz

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

// Filter selects entries as DescribeAcls and DeleteAcls filters do: ANY
// (and nil strings) match everything; pattern type MATCH selects the
// entries that apply to the named resource (its literal name, the literal
// wildcard, and prefixes of it); ANY with a name selects entries of that
// exact name whatever their pattern type.
type Filter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Matches says whether e passes the filter.
func (f Filter) Matches(e image.ACL) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && int8(f.ResourceType) != e.ResourceType {
		return false
	}
	if f.Principal != nil && *f.Principal != e.Principal {
		return false
	}
	if f.Host != nil && *f.Host != e.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && int8(f.Operation) != e.Operation {
		return false
	}
	if f.Permission != kmsg.ACLPermissionTypeAny && int8(f.Permission) != e.Permission {
		return false
	}
	pt := kmsg.ACLResourcePatternType(e.PatternType)
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		return f.ResourceName == nil || *f.ResourceName == e.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		if f.ResourceName == nil {
			return true
		}
		name := *f.ResourceName
		switch pt {
		case kmsg.ACLResourcePatternTypeLiteral:
			return e.ResourceName == name || e.ResourceName == "*"
		case kmsg.ACLResourcePatternTypePrefixed:
			return strings.HasPrefix(name, e.ResourceName)
		}
		return false
	default:
		return pt == f.PatternType && (f.ResourceName == nil || *f.ResourceName == e.ResourceName)
	}
}

// ValidBinding checks a new entry as CreateAcls does and returns why it is
// refused ("" when valid).
func ValidBinding(e image.ACL) string {
	switch kmsg.ACLResourceType(e.ResourceType) {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeTransactionalId,
		kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
	case kmsg.ACLResourceTypeCluster:
		if e.ResourceName != ClusterName {
			return "the cluster resource is named " + ClusterName
		}
	default:
		return "resource type " + kmsg.ACLResourceType(e.ResourceType).String() + " cannot be used in an ACL"
	}
	if e.ResourceName == "" {
		return "resource name is empty"
	}
	switch kmsg.ACLResourcePatternType(e.PatternType) {
	case kmsg.ACLResourcePatternTypeLiteral:
	case kmsg.ACLResourcePatternTypePrefixed:
		if e.ResourceName == "*" {
			return "a prefixed pattern cannot be the wildcard '*'"
		}
	default:
		return "pattern type must be LITERAL or PREFIXED"
	}
	if op := kmsg.ACLOperation(e.Operation); op < kmsg.ACLOperationAll || op > kmsg.ACLOperationDescribeTokens {
		return "operation " + op.String() + " cannot be used in an ACL"
	}
	if p := kmsg.ACLPermissionType(e.Permission); p != kmsg.ACLPermissionTypeAllow && p != kmsg.ACLPermissionTypeDeny {
		return "permission must be ALLOW or DENY"
	}
	kind, _, ok := strings.Cut(e.Principal, ":")
	if !ok || kind == "" || e.Principal == kind+":" {
		return "principal " + e.Principal + " is not TYPE:NAME (User:alice)"
	}
	if e.Host == "" {
		return "host is empty (use * for any host)"
	}
	return ""
}
