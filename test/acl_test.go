package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/test/harness"
)

// TestACLsPlaintext runs brokers with the authorizer on over PLAINTEXT,
// where every client is User:ANONYMOUS, and allow.everyone.if.no.acl.found
// so that replication (CLUSTER_ACTION on the cluster, which no ACL names)
// keeps working. `skein acl` creates a topic's ACLs: write without read
// lets kcat produce but not consume; a DENY stops a connected franz-go
// producer at its next request; deleting the topic's ACLs opens it again;
// replicas stay identical.
func TestACLsPlaintext(t *testing.T) {
	kcat := kcatBinary(t)
	c := harness.StartCluster(t, harness.Options{Brokers: 3,
		BrokerArgs: []string{"--authorizer", "acl", "--allow-everyone-if-no-acl-found"}})
	b := c.Bootstrap()
	createTopic(t, c, "open", 1, 3, nil)
	createTopic(t, c, "secret", 1, 3, nil)

	// Write without read.
	res := c.RunCLI(t, 30*time.Second, nil, "acl", "create", "--allow-principal", "User:*", "--operation", "Write",
		"--topic", "secret")
	if res.Err != nil || !strings.Contains(res.Stdout, "created") {
		t.Fatalf("skein acl create: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "acl", "list", "--topic", "secret")
	if res.Err != nil || !strings.Contains(res.Stdout, "User:*") || !strings.Contains(res.Stdout, "Write") {
		t.Fatalf("skein acl list: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	t.Logf("skein acl list --topic secret:\n%s", res.Stdout)

	res = harness.RunCommand(t, 30*time.Second, strings.NewReader("one\ntwo\n"), kcat, "-P", "-b", b, "-t", "secret", "-p", "0")
	if res.Err != nil || strings.Contains(res.Stderr, "ERROR") {
		t.Fatalf("kcat -P secret (write allowed): %v\n%s", res.Err, res.Stderr)
	}
	res = harness.RunCommand(t, 30*time.Second, nil, kcat, "-C", "-b", b, "-t", "secret", "-p", "0", "-o", "beginning", "-e", "-q")
	if res.Err == nil || !strings.Contains(strings.ToLower(res.Stderr), "authoriz") || res.Stdout != "" {
		t.Fatalf("kcat -C secret (no read ACL): want an authorization error, got %v\nstdout %q\nstderr %s", res.Err, res.Stdout, res.Stderr)
	}
	t.Logf("kcat -C secret refused: %s", strings.TrimSpace(res.Stderr))
	// A topic no ACL names stays open (allow.everyone.if.no.acl.found).
	res = harness.RunCommand(t, 30*time.Second, strings.NewReader("x\n"), kcat, "-P", "-b", b, "-t", "open", "-p", "0")
	if res.Err != nil || strings.Contains(res.Stderr, "ERROR") {
		t.Fatalf("kcat -P open: %v\n%s", res.Err, res.Stderr)
	}

	// A connected producer is stopped by a new DENY at its next request,
	// without reconnecting.
	cl := c.Client(t, kgo.DefaultProduceTopic("secret"), kgo.RecordRetries(2))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatalf("produce before the deny: %v", err)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "acl", "create", "--deny-principal", "User:ANONYMOUS", "--operation", "All", "--topic", "secret")
	if res.Err != nil || !strings.Contains(res.Stdout, "created") {
		t.Fatalf("skein acl create --deny-principal: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	// The creating broker waited for its own image; the others may be a
	// few ms behind: wait for the refusal, with a deadline.
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr()
		if errors.Is(err, kerr.TopicAuthorizationFailed) {
			return true, ""
		}
		return false, "produce after the deny: " + errString(err)
	})
	// Deleting every ACL of the topic (unset flags match anything) opens
	// it again: no ACL names it.
	res = c.RunCLI(t, 30*time.Second, nil, "acl", "delete", "--topic", "secret")
	if res.Err != nil || strings.Count(res.Stdout, "deleted") != 2 {
		t.Fatalf("skein acl delete --topic secret: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "acl", "list")
	if res.Err != nil || strings.Contains(res.Stdout, "secret") {
		t.Fatalf("skein acl list after delete: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("open again")}).FirstErr()
		return err == nil, "produce once no ACL names the topic: " + errString(err)
	})
	for _, topic := range []string{"open", "secret"} {
		if res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic); res.Err != nil {
			t.Fatalf("skein replicas verify %s: %v\n%s%s", topic, res.Err, res.Stdout, res.Stderr)
		}
	}
}
