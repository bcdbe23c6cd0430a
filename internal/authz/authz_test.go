package authz

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/skein-io/skein/controller/image"
)

const (
	topic   = int8(kmsg.ACLResourceTypeTopic)
	group   = int8(kmsg.ACLResourceTypeGroup)
	literal = int8(kmsg.ACLResourcePatternTypeLiteral)
	prefix  = int8(kmsg.ACLResourcePatternTypePrefixed)
	allow   = int8(kmsg.ACLPermissionTypeAllow)
	deny    = int8(kmsg.ACLPermissionTypeDeny)
)

func acl(rt int8, name string, pt int8, principal string, op kmsg.ACLOperation, perm int8) image.ACL {
	return image.ACL{ID: name + principal + op.String(), ResourceType: rt, ResourceName: name, PatternType: pt,
		Principal: principal, Host: "*", Operation: int8(op), Permission: perm}
}

func TestAuthorizer(t *testing.T) {
	acls := []image.ACL{
		acl(topic, "orders", literal, "User:alice", kmsg.ACLOperationWrite, allow),
		acl(topic, "logs-", prefix, "User:bob", kmsg.ACLOperationRead, allow),
		acl(topic, "logs-secret", literal, "User:bob", kmsg.ACLOperationAll, deny),
		acl(topic, "*", literal, "User:carol", kmsg.ACLOperationDescribe, allow),
		acl(group, "g", literal, "User:*", kmsg.ACLOperationRead, allow),
		{ID: "h", ResourceType: topic, ResourceName: "hosted", PatternType: literal, Principal: "User:dave",
			Host: "10.0.0.1", Operation: int8(kmsg.ACLOperationRead), Permission: allow},
	}
	a := New(Config{SuperUsers: []string{"User:admin"}}, func() []image.ACL { return acls })
	T := kmsg.ACLResourceTypeTopic
	cases := []struct {
		principal, host string
		op              kmsg.ACLOperation
		rt              kmsg.ACLResourceType
		name            string
		want            bool
	}{
		{"User:alice", "h", kmsg.ACLOperationWrite, T, "orders", true},
		{"User:alice", "h", kmsg.ACLOperationRead, T, "orders", false},    // write but no read
		{"User:alice", "h", kmsg.ACLOperationDescribe, T, "orders", true}, // write implies describe
		{"User:bob", "h", kmsg.ACLOperationRead, T, "logs-app", true},     // prefixed
		{"User:bob", "h", kmsg.ACLOperationRead, T, "logs-secret", false}, // deny beats allow
		{"User:bob", "h", kmsg.ACLOperationRead, T, "other", false},
		{"User:carol", "h", kmsg.ACLOperationDescribe, T, "anything", true}, // wildcard
		{"User:carol", "h", kmsg.ACLOperationRead, T, "anything", false},
		{"User:eve", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, "g", true}, // User:*
		{"User:dave", "10.0.0.1", kmsg.ACLOperationRead, T, "hosted", true},
		{"User:dave", "10.0.0.2", kmsg.ACLOperationRead, T, "hosted", false},
		{"User:admin", "h", kmsg.ACLOperationDelete, T, "orders", true}, // super user
		{"User:eve", "h", kmsg.ACLOperationRead, T, "noacls", true},     // carol's "*" names every topic... see below
	}
	for _, c := range cases[:len(cases)-1] {
		if got := a.Allowed(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s %s %s %s %q = %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
	// No entry names a group "h2": allowed only with allow.everyone.if.no.acl.found.
	if a.Allowed("User:eve", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, "h2") {
		t.Error("no ACL found: allowed without AllowIfNoACL")
	}
	b := New(Config{AllowIfNoACL: true}, func() []image.ACL { return acls })
	if !b.Allowed("User:eve", "h", kmsg.ACLOperationRead, kmsg.ACLResourceTypeGroup, "h2") {
		t.Error("no ACL found: refused with AllowIfNoACL")
	}
	// An ACL naming the resource (carol's wildcard) turns the default off.
	if b.Allowed("User:eve", "h", kmsg.ACLOperationRead, T, "noacls") {
		t.Error("wildcard ACL present, yet the no-ACL default applied")
	}
	// AllowedAny: alice may write some topic; bob's prefixed read is not write.
	if !a.AllowedAny("User:alice", "h", kmsg.ACLOperationWrite, T) || a.AllowedAny("User:bob", "h", kmsg.ACLOperationWrite, T) {
		t.Error("AllowedAny")
	}
	// Changes are seen at the next check (a new slice).
	acls = append(acls[:len(acls):len(acls)], acl(topic, "orders", literal, "User:alice", kmsg.ACLOperationRead, allow))
	if !a.Allowed("User:alice", "h", kmsg.ACLOperationRead, T, "orders") {
		t.Error("a new ACL is not seen")
	}
	var none *Authorizer
	if !none.Allowed("User:x", "h", kmsg.ACLOperationAll, T, "x") || none.Enabled() {
		t.Error("nil authorizer must allow")
	}
}

func TestFilter(t *testing.T) {
	lit := acl(topic, "logs-a", literal, "User:bob", kmsg.ACLOperationRead, allow)
	pre := acl(topic, "logs-", prefix, "User:bob", kmsg.ACLOperationRead, allow)
	wild := acl(topic, "*", literal, "User:bob", kmsg.ACLOperationRead, allow)
	name := "logs-a"
	bob, eve := "User:bob", "User:eve"
	match := Filter{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: &name, PatternType: kmsg.ACLResourcePatternTypeMatch,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny, Principal: &bob}
	for _, e := range []image.ACL{lit, pre, wild} {
		if !match.Matches(e) {
			t.Errorf("MATCH logs-a does not select %+v", e)
		}
	}
	match.Principal = &eve
	if match.Matches(lit) {
		t.Error("principal filter ignored")
	}
	exact := Filter{ResourceType: kmsg.ACLResourceTypeAny, ResourceName: &name, PatternType: kmsg.ACLResourcePatternTypeLiteral,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	if !exact.Matches(lit) || exact.Matches(pre) || exact.Matches(wild) {
		t.Error("LITERAL filter")
	}
	all := Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	if !all.Matches(pre) || !all.Matches(wild) {
		t.Error("ANY filter")
	}
	if ValidBinding(lit) != "" || ValidBinding(image.ACL{ResourceType: topic, ResourceName: "*", PatternType: prefix,
		Principal: "User:x", Host: "*", Operation: 3, Permission: allow}) == "" {
		t.Error("ValidBinding")
	}
}
