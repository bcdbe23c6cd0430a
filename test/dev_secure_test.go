package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/skein-io/skein/test/harness"
)

// devPorts finds n consecutive free loopback ports (skein dev's layout:
// the first broker, the controller, then the other brokers).
func devPorts(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if base+n > 65535 {
			continue
		}
		ok := true
		var held []net.Listener
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			_ = l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

// TestDevSecure runs `skein dev --secure` as a user would (SASL_SSL on
// every listener, ACLs on, admin super user) and goes through the
// security model with kcat, sarama, franz-go and the CLI: refused logins
// and protocols write nothing; a new user with a prefixed WRITE produces; without a
// group ACL its consumer fails with GROUP_AUTHORIZATION_FAILED and with
// one it reads; Metadata hides the topics it may not describe; a DENY
// beats its ALLOW; replication and the web console work with security on.
func TestDevSecure(t *testing.T) {
	kcat := kcatBinary(t)
	base := devPorts(t, 4)
	dir := t.TempDir()
	ready := make(chan string, 1)
	var consoleURL string
	dev := harness.StartChild(t, "skein dev --secure", harness.Binary(t), []string{"dev", "--secure", "--data-dir", dir,
		"--base-port", fmt.Sprint(base), "--http-listen", "127.0.0.1:0", "--log-level", "warn"}, harness.ChildOutput{
		Stdout: func(line string) {
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "web console: "); ok {
				consoleURL = u
			}
			if strings.HasPrefix(line, "Press Ctrl-C") {
				ready <- consoleURL
			}
		}})
	select {
	case consoleURL = <-ready:
	case <-dev.Done():
		t.Fatal("skein dev --secure exited before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatal("skein dev --secure not ready after 60s")
	}
	b := fmt.Sprintf("127.0.0.1:%d", base)
	admin := filepath.Join(dir, "client.properties")
	ca := filepath.Join(dir, "ca.pem")
	skein := func(args ...string) harness.CLIResult {
		t.Helper()
		return harness.RunCommand(t, 30*time.Second, nil, harness.Binary(t), append(args, "--bootstrap-server", b, "--command-config", admin)...)
	}
	writeProps := func(name, body string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sasl := func(user, password, mech string) string {
		return writeProps(user+".properties", fmt.Sprintf("security.protocol=SASL_SSL\nssl.ca.location=%s\nsasl.mechanism=%s\nsasl.username=%s\nsasl.password=%s\n", ca, mech, user, password))
	}
	kcatRun := func(stdin string, args ...string) harness.CLIResult {
		t.Helper()
		var in *strings.Reader
		if stdin != "" {
			in = strings.NewReader(stdin)
		}
		if in == nil {
			return harness.RunCommand(t, 30*time.Second, nil, kcat, append([]string{"-b", b}, args...)...)
		}
		return harness.RunCommand(t, 30*time.Second, in, kcat, append([]string{"-b", b}, args...)...)
	}

	for _, topic := range []string{"orders-eu", "secret"} {
		if res := skein("topic", "create", topic, "--partitions", "1"); res.Err != nil {
			t.Fatalf("create %s: %v\n%s", topic, res.Err, res.Stderr)
		}
	}
	if res := kcatRun("by-admin\n", "-F", admin, "-P", "-t", "orders-eu"); res.Err != nil || strings.Contains(res.Stderr, "ERROR") {
		t.Fatalf("admin produce: %v\n%s", res.Err, res.Stderr)
	}
	pwFile := writeProps("alice.pw", "alice-secret\n")
	if res := skein("user", "create", "alice", "--password-file", pwFile); res.Err != nil {
		t.Fatalf("user create: %v\n%s", res.Err, res.Stderr)
	}
	alice := sasl("alice", "alice-secret", "SCRAM-SHA-512")

	// Refusals: each writes nothing (checked at the end by the record count).
	refused := []struct {
		what string
		args []string
	}{
		{"wrong password", []string{"-F", sasl("alice", "wrong", "SCRAM-SHA-512")}},
		{"unknown user", []string{"-F", sasl("nobody", "x", "SCRAM-SHA-512")}},
		{"mechanism without a credential", []string{"-F", sasl("alice", "alice-secret", "SCRAM-SHA-256")}},
		{"plaintext client on the TLS port", nil},
		{"TLS without SASL", []string{"-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + ca}},
		{"untrusted CA", []string{"-F", writeProps("bad-ca.properties", "security.protocol=SASL_SSL\nssl.ca.location=/etc/ssl/certs/ca-certificates.crt\n"+
			"sasl.mechanism=SCRAM-SHA-512\nsasl.username=alice\nsasl.password=alice-secret\n")}},
	}
	for _, r := range refused {
		args := append(append([]string{}, r.args...), "-P", "-t", "orders-eu", "-m", "5")
		res := kcatRun("refused\n", args...)
		if res.Err == nil && !strings.Contains(res.Stderr, "ERROR") && !strings.Contains(res.Stderr, "failed") {
			t.Errorf("%s: kcat produced without an error\n%s", r.what, res.Stderr)
		}
		t.Logf("%s: refused: %s", r.what, errorLine(res.Stderr))
	}

	// Prefixed WRITE: alice produces to orders-*, but reads nothing yet.
	if res := skein("acl", "create", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "orders-",
		"--resource-pattern-type", "prefixed"); res.Err != nil {
		t.Fatalf("acl create: %v\n%s", res.Err, res.Stderr)
	}
	if res := kcatRun("by-alice\n", "-F", alice, "-P", "-t", "orders-eu"); res.Err != nil || strings.Contains(res.Stderr, "ERROR") {
		t.Fatalf("alice produce: %v\n%s", res.Err, res.Stderr)
	}
	// sarama and franz-go over SASL_SSL: a wrong password is refused, the
	// right one produces.
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	saramaTLS := func(l saramaLogin) *sarama.Config {
		cfg := l.config()
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tlsCfg
		return cfg
	}
	if _, err := sarama.NewSyncProducer([]string{b}, saramaTLS(saramaLogin{sarama.SASLTypeSCRAMSHA512, "alice", "nope"})); err == nil {
		t.Error("sarama with a wrong password connected")
	} else {
		t.Logf("sarama, wrong password: refused: %v", err)
	}
	sp, err := sarama.NewSyncProducer([]string{b}, saramaTLS(saramaLogin{sarama.SASLTypeSCRAMSHA512, "alice", "alice-secret"}))
	if err != nil {
		t.Fatalf("sarama as alice: %v", err)
	}
	if _, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "orders-eu", Value: sarama.StringEncoder("by-sarama")}); err != nil {
		t.Fatalf("sarama produce as alice: %v", err)
	}
	_ = sp.Close()
	bad, err := kgo.NewClient(kgo.SeedBrokers(b), kgo.DialTLSConfig(tlsCfg), kgo.RequestRetries(0),
		kgo.SASL(scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = bad.SeedBrokers()[0].Request(pctx, kmsg.NewPtrMetadataRequest())
	pcancel()
	bad.Close()
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("franz-go with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	} else {
		t.Logf("franz-go, wrong password: refused: %v", err)
	}

	// Metadata hides what alice may not describe.
	res := kcatRun("", "-F", alice, "-L")
	if res.Err != nil || !strings.Contains(res.Stdout, `"orders-eu"`) || strings.Contains(res.Stdout, `"secret"`) {
		t.Fatalf("alice's metadata: %v\n%s", res.Err, res.Stdout)
	}
	// Read on the topic but no group ACL: GROUP_AUTHORIZATION_FAILED.
	if res := skein("acl", "create", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders-eu"); res.Err != nil {
		t.Fatalf("acl create: %v\n%s", res.Err, res.Stderr)
	}
	res = kcatRun("", "-F", alice, "-G", "billing", "orders-eu", "-e", "-X", "auto.offset.reset=earliest")
	if !strings.Contains(res.Stderr, "Group authorization failed") {
		t.Fatalf("alice's group consumer without a group ACL: want GROUP_AUTHORIZATION_FAILED, got %v\n%s", res.Err, res.Stderr)
	}
	if res := skein("acl", "create", "--allow-principal", "User:alice", "--operation", "Read", "--group", "billing"); res.Err != nil {
		t.Fatalf("acl create: %v\n%s", res.Err, res.Stderr)
	}
	res = kcatRun("", "-F", alice, "-G", "billing", "orders-eu", "-e", "-X", "auto.offset.reset=earliest", "-q")
	if res.Err != nil || strings.Count(res.Stdout, "\n") != 3 || !strings.Contains(res.Stdout, "by-admin") || !strings.Contains(res.Stdout, "by-alice") {
		t.Fatalf("alice's group consumer: %v\nstdout %q\nstderr %s", res.Err, res.Stdout, res.Stderr)
	}
	// Deny beats allow.
	if res := skein("acl", "create", "--deny-principal", "User:alice", "--operation", "Read", "--topic", "orders-eu"); res.Err != nil {
		t.Fatalf("acl create: %v\n%s", res.Err, res.Stderr)
	}
	res = kcatRun("", "-F", alice, "-C", "-t", "orders-eu", "-o", "beginning", "-e", "-q")
	if !strings.Contains(res.Stderr, "Topic authorization failed") || res.Stdout != "" {
		t.Fatalf("alice read after a DENY: %v\nstdout %q\nstderr %s", res.Err, res.Stdout, res.Stderr)
	}
	// Nothing refused was written; replicas are identical.
	res = kcatRun("", "-F", admin, "-C", "-t", "orders-eu", "-o", "beginning", "-e", "-q")
	if res.Err != nil || res.Stdout != "by-admin\nby-alice\nby-sarama\n" {
		t.Fatalf("orders-eu holds %q (%v), want by-admin, by-alice and by-sarama only", res.Stdout, res.Err)
	}
	if res := skein("replicas", "verify", "orders-eu"); res.Err != nil {
		t.Fatalf("replicas verify: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	// Transactions: the coordinator's markers reach the other brokers
	// over SASL_SSL (the brokers log in as admin).
	if res := skein("topic", "create", "orders-txn", "--partitions", "3"); res.Err != nil {
		t.Fatalf("create orders-txn: %v\n%s", res.Err, res.Stderr)
	}
	pw, err := os.ReadFile(filepath.Join(dir, "admin.password"))
	if err != nil {
		t.Fatal(err)
	}
	secure := []kgo.Opt{kgo.SeedBrokers(b), kgo.DialTLSConfig(tlsCfg),
		kgo.SASL(scram.Auth{User: "admin", Pass: strings.TrimSpace(string(pw))}.AsSha512Mechanism())}
	tp, err := kgo.NewClient(append(secure, kgo.TransactionalID("dev-secure-txn"), kgo.DefaultProduceTopic("orders-txn"),
		kgo.RecordDeliveryTimeout(20*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	// Not closed: a client stuck in a transaction would hang the cleanup.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Each step is bounded here: a coordinator that cannot reach the other
	// brokers keeps the client retrying past its context and delivery
	// timeout.
	within := func(what string, fn func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- fn() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no answer after 30s (the brokers cannot reach each other for transactions?)", what)
		}
	}
	for i, commit := range []bool{true, false} {
		within("begin", tp.BeginTransaction)
		for p := int32(0); p < 3; p++ {
			within("transactional produce", func() error {
				return tp.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("txn%d-p%d", i, p))}).FirstErr()
			})
		}
		within(fmt.Sprintf("end transaction %d (commit %v)", i, commit), func() error {
			return tp.EndTransaction(ctx, kgo.TransactionEndTry(commit))
		})
	}
	tp.Close()
	rc, err := kgo.NewClient(append(secure, kgo.ConsumeTopics("orders-txn"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		fctx, fcancel := context.WithTimeout(ctx, time.Second)
		defer fcancel()
		rc.PollFetches(fctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		return len(got) >= 3, fmt.Sprintf("read_committed read %q", got)
	})
	for _, v := range got {
		if !strings.HasPrefix(v, "txn0-") {
			t.Fatalf("read_committed read %q from the aborted transaction", v)
		}
	}

	// The console logs in as the brokers do.
	if consoleURL != "" {
		code, body, err := httpGet(consoleURL + "topics")
		if err != nil || code != 200 {
			t.Fatalf("console topics page: %d %v", code, err)
		}
		if !strings.Contains(body, "orders-eu") || strings.Contains(strings.ToLower(body), "sasl") {
			t.Fatalf("console topics page over SASL_SSL:\n%s", body)
		}
	}
}

// errorLine is the first line of kcat's stderr that reports a failure.
func errorLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if ll := strings.ToLower(l); strings.Contains(ll, "fail") || strings.Contains(ll, "error") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(s)
}
