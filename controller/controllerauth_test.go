package controller

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every API the controller serves but ApiVersions, SaslHandshake and
// SaslAuthenticate (built into every registry: how a connection
// authenticates, before any principal exists) has an authorization rule: a
// new API cannot slip in unchecked.
func TestControllerAPIsAllChecked(t *testing.T) {
	c := &Controller{}
	for _, v := range c.registry().Versions() {
		if _, ok := controllerOps[v.ApiKey]; !ok && v.ApiKey != 18 && v.ApiKey != 17 && v.ApiKey != 36 {
			t.Errorf("API key %d has no authorization rule in controllerOps", v.ApiKey)
		}
	}
}

// With the authorizer on, brokers register while no ACL names the cluster
// (allow.everyone.if.no.acl.found); once one does, an anonymous client
// can neither register a broker nor create a topic on the controller.
func TestControllerAuthorizer(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Authorizer, cfg.AllowEveryoneIfNoACL = true, true
	ctl := startController(t, cfg)
	startClient(t, ctl, 101)

	ca := kmsg.NewPtrCreateACLsRequest()
	cr := kmsg.NewCreateACLsRequestCreation()
	cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral
	cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:admin", "*", kmsg.ACLOperationAll, kmsg.ACLPermissionTypeAllow
	ca.Creations = append(ca.Creations, cr)
	if resp := ask[*kmsg.CreateACLsResponse](t, ctl.Addr(), ca); len(resp.Results) != 1 || resp.Results[0].ErrorCode != 0 {
		t.Fatalf("create ACL: %+v", resp)
	}

	reg := kmsg.NewPtrBrokerRegistrationRequest()
	reg.BrokerID = 102
	if rresp := ask[*kmsg.BrokerRegistrationResponse](t, ctl.Addr(), reg); rresp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("anonymous broker registration: %v", kerr.ErrorForCode(rresp.ErrorCode))
	}
	ct := kmsg.NewPtrCreateTopicsRequest()
	tp := kmsg.NewCreateTopicsRequestTopic()
	tp.Topic, tp.NumPartitions, tp.ReplicationFactor = "t", 1, 1
	ct.Topics = append(ct.Topics, tp)
	if ctresp := ask[*kmsg.CreateTopicsResponse](t, ctl.Addr(), ct); len(ctresp.Topics) != 1 || ctresp.Topics[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("anonymous create topics: %+v", ctresp.Topics)
	}
}

// A request only the active controller serves is answered NOT_CONTROLLER
// in every per-item result too (a client matches results to its items):
// the ACL and SCRAM APIs included.
func TestNotControllerResponsePerItem(t *testing.T) {
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Creations = make([]kmsg.CreateACLsRequestCreation, 2)
	if res := notControllerResponse(ca).(*kmsg.CreateACLsResponse).Results; len(res) != 2 || res[1].ErrorCode != kerr.NotController.Code {
		t.Fatalf("CreateAcls: %+v", res)
	}
	us := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	us.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "a"}}
	us.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{{Name: "b"}}
	if res := notControllerResponse(us).(*kmsg.AlterUserSCRAMCredentialsResponse).Results; len(res) != 2 || res[0].ErrorCode != kerr.NotController.Code {
		t.Fatalf("AlterUserScramCredentials: %+v", res)
	}
	if code := notControllerResponse(kmsg.NewPtrDescribeQuorumRequest()).(*kmsg.DescribeQuorumResponse).ErrorCode; code != kerr.NotController.Code {
		t.Fatalf("DescribeQuorum: %d", code)
	}
}
