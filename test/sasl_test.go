package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	ksasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xdgscram "github.com/xdg-go/scram"

	"github.com/skein-io/skein/test/harness"
)

// saslCluster starts brokers with two listeners: INTERNAL (PLAINTEXT, what
// the harness and the admin client use) and EXTERNAL (SASL_PLAINTEXT, what
// the clients under test use); with Options.TLS, SSL and SASL_SSL. The controllers write the bootstrap user
// admin (SCRAM-SHA-512 and SCRAM-SHA-256, password admin-secret) and the
// broker user (SCRAM-SHA-512, broker-secret) when they initialize the
// metadata (--add-scram).
func saslCluster(t *testing.T, opts harness.Options) *harness.Cluster {
	t.Helper()
	opts.ExternalListener = true
	opts.HTTP = true
	opts.ControllerArgs = append(opts.ControllerArgs,
		"--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]",
		"--add-scram", "SCRAM-SHA-256=[name=admin,password=admin-secret,iterations=8192]",
		"--add-scram", `SCRAM-SHA-512=[name=broker,password="broker,secret"]`)
	protocols := "INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT"
	if opts.TLS != nil { // the harness's TLS cluster: SSL and SASL_SSL
		protocols = "INTERNAL:SSL,EXTERNAL:SASL_SSL"
	}
	opts.BrokerArgs = append(opts.BrokerArgs, "--listener-security-protocol-map", protocols)
	return harness.StartCluster(t, opts)
}

func external(c *harness.Cluster) []string {
	var out []string
	for _, b := range c.Brokers {
		out = append(out, b.ExternalAddr)
	}
	return out
}

// saslClient is a franz-go client on the EXTERNAL listeners logging in
// with mech; it does not retry (an authentication failure must surface).
func saslClient(t *testing.T, c *harness.Cluster, mech ksasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return c.Client(t, append([]kgo.Opt{kgo.SeedBrokers(external(c)...), kgo.SASL(mech),
		kgo.RequestRetries(0), kgo.RetryTimeout(3 * time.Second)}, opts...)...)
}

// saslAuthCount is a broker's authentication counter of mechanism and
// result (success, failure).
func saslAuthCount(t *testing.T, b *harness.Node, mech, result string) float64 {
	t.Helper()
	fams, err := b.Metrics()
	if err != nil {
		t.Fatalf("metrics of %s: %v", b.Name, err)
	}
	v, _ := harness.MetricValue(fams, "skein_broker_sasl_authentications_total", map[string]string{"mechanism": mech, "result": result})
	return v
}

// TestSASLClients: on a SASL_PLAINTEXT listener, franz-go, kcat and
// sarama are refused with an authentication error for a wrong password,
// an unknown user and a mechanism the user has no credential for, and
// write nothing; with the right credentials they produce and consume over
// PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512. A request before authentication
// closes the connection. Users made with kadm (AlterUserScramCredentials)
// log in; a deleted credential stops new logins. The broker counts the
// outcomes per mechanism.
func TestSASLClients(t *testing.T) {
	c := saslCluster(t, harness.Options{})
	b := c.Brokers[0]
	const topic = "sasl"
	createTopic(t, c, topic, 1, 1, nil)
	adm := c.Admin(t) // over the PLAINTEXT listener
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// kadm: alice gets SCRAM-SHA-256 only; errors as Kafka's.
	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := altered["alice"].Err; err != nil {
		t.Fatalf("create alice: %v", err)
	}
	// kadm refuses few iterations itself: the broker is asked directly.
	weak := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = "weak", 2, 1000, []byte("salt"), []byte("salted")
	weak.Upsertions = append(weak.Upsertions, up)
	wresp, err := weak.RequestWith(ctx, c.Client(t))
	if err != nil || len(wresp.Results) != 1 || wresp.Results[0].ErrorCode != kerr.UnacceptableCredential.Code {
		t.Errorf("1000 iterations: %v %+v, want UNACCEPTABLE_CREDENTIAL", err, wresp)
	}
	gone, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "nobody", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || !errors.Is(gone["nobody"].Err, kerr.ResourceNotFound) {
		t.Errorf("deleting a missing credential: %v %v, want RESOURCE_NOT_FOUND", err, gone["nobody"].Err)
	}
	described, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(described["admin"].CredInfos); got != "[SCRAM-SHA-256=iterations=8192 SCRAM-SHA-512=iterations=4096]" {
		t.Errorf("admin's credentials: %s", got)
	}
	if got := fmt.Sprint(described["alice"].CredInfos); got != "[SCRAM-SHA-256=iterations=4096]" {
		t.Errorf("alice's credentials: %s", got)
	}

	// A request before authentication closes the connection.
	rawRefused(t, b.ExternalAddr)

	// Refused logins write nothing.
	refused := []struct {
		name string
		mech ksasl.Mechanism
	}{
		{"wrong password", scram.Auth{User: "admin", Pass: "nope"}.AsSha512Mechanism()},
		{"unknown user", scram.Auth{User: "mallory", Pass: "admin-secret"}.AsSha256Mechanism()},
		{"mechanism without a credential", scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()},
		{"plain wrong password", plain.Auth{User: "alice", Pass: "nope"}.AsMechanism()},
	}
	for _, r := range refused {
		cl := saslClient(t, c, r.mech)
		if err := cl.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", r.name, err)
		}
		// The producer retries a failed login until its time runs out.
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		if err := cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Value: []byte("refused " + r.name)}).FirstErr(); err == nil {
			t.Errorf("%s: produced", r.name)
		}
		pcancel()
		cl.Close()
	}

	// Each mechanism produces and consumes with franz-go.
	logins := []struct {
		name string
		mech ksasl.Mechanism
	}{
		{"PLAIN", plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()},
		{"SCRAM-SHA-256", scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()},
		{"SCRAM-SHA-512", scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism()},
	}
	var want []string
	for _, l := range logins {
		v := "franz-go " + l.name
		want = append(want, v)
		cl := saslClient(t, c, l.mech)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("%s: produce: %v", l.name, err)
		}
		got := consumeValues(t, saslClient(t, c, l.mech, kgo.ConsumeTopics(topic)), len(want))
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: consumed %q, want %q", l.name, got, want)
		}
	}

	// kcat (librdkafka): refused, then each mechanism produces and reads back.
	kcat := kcatBinary(t)
	kcatArgs := func(mech, user, pass string) []string {
		return []string{"-b", b.ExternalAddr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=" + mech,
			"-X", "sasl.username=" + user, "-X", "sasl.password=" + pass, "-m", "10"}
	}
	for _, bad := range [][3]string{{"SCRAM-SHA-512", "admin", "nope"}, {"SCRAM-SHA-256", "mallory", "x"}, {"PLAIN", "alice", "nope"}} {
		res := harness.RunCommand(t, 20*time.Second, strings.NewReader("refused kcat\n"), kcat,
			append(kcatArgs(bad[0], bad[1], bad[2]), "-P", "-t", topic)...)
		if res.Err == nil || !strings.Contains(res.Stderr, "Authentication failed") {
			t.Errorf("kcat %s %s: err %v, stderr %q; want an authentication failure", bad[0], bad[1], res.Err, res.Stderr)
		}
	}
	for _, l := range []struct{ mech, user, pass string }{
		{"PLAIN", "admin", "admin-secret"}, {"SCRAM-SHA-256", "alice", "alice-secret"}, {"SCRAM-SHA-512", "admin", "admin-secret"},
	} {
		v := "kcat " + l.mech
		want = append(want, v)
		res := harness.RunCommand(t, 20*time.Second, strings.NewReader(v+"\n"), kcat, append(kcatArgs(l.mech, l.user, l.pass), "-P", "-t", topic)...)
		if res.Err != nil {
			t.Fatalf("kcat %s produce: %v: %s", l.mech, res.Err, res.Stderr)
		}
		res = harness.RunCommand(t, 20*time.Second, nil, kcat, append(kcatArgs(l.mech, l.user, l.pass), "-C", "-t", topic, "-e", "-q")...)
		if res.Err != nil || strings.TrimSpace(res.Stdout) != strings.Join(want, "\n") {
			t.Errorf("kcat %s consume: %v, got %q, want %q (stderr %q)", l.mech, res.Err, res.Stdout, want, res.Stderr)
		}
	}

	// sarama.
	for _, bad := range []saramaLogin{{sarama.SASLTypeSCRAMSHA512, "admin", "nope"}, {sarama.SASLTypePlaintext, "mallory", "x"}} {
		if _, err := sarama.NewSyncProducer(external(c), bad.config()); err == nil {
			t.Errorf("sarama %s %s: connected", bad.mech, bad.user)
		} else if !strings.Contains(err.Error(), "SASL") && !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
			t.Errorf("sarama %s %s: %v, want an authentication error", bad.mech, bad.user, err)
		}
	}
	for _, l := range []saramaLogin{{sarama.SASLTypePlaintext, "alice", "alice-secret"}, {sarama.SASLTypeSCRAMSHA256, "alice", "alice-secret"},
		{sarama.SASLTypeSCRAMSHA512, "admin", "admin-secret"}} {
		v := "sarama " + string(l.mech)
		want = append(want, v)
		p, err := sarama.NewSyncProducer(external(c), l.config())
		if err != nil {
			t.Fatalf("sarama %s: %v", l.mech, err)
		}
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
			t.Fatalf("sarama %s produce: %v", l.mech, err)
		}
		_ = p.Close()
	}

	// Everything accepted, nothing refused, in order (read over PLAINTEXT).
	got := consumeValues(t, c.Client(t, kgo.ConsumeTopics(topic)), len(want))
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("topic holds %q, want %q", got, want)
	}

	// A deleted credential stops new logins.
	del, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || del["alice"].Err != nil {
		t.Fatalf("delete alice: %v %v", err, del["alice"].Err)
	}
	for _, mech := range []ksasl.Mechanism{scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(),
		plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()} {
		cl := saslClient(t, c, mech)
		err := cl.Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s login of deleted alice: %v, want SASL_AUTHENTICATION_FAILED", mech.Name(), err)
		}
		cl.Close()
	}

	// The CLI logs in with --command-config (Kafka client properties).
	props := filepath.Join(t.TempDir(), "client.properties")
	if err := os.WriteFile(props, []byte("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"+
		"sasl.username=admin\nsasl.password=admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// (harness.RunCommand: RunCLI would add the PLAINTEXT listeners.)
	res := harness.RunCommand(t, 30*time.Second, strings.NewReader("carol-secret\n"), harness.Binary(t), "user", "create", "carol",
		"--password-file", "-", "--bootstrap-server", b.ExternalAddr, "--command-config", props)
	if res.Err != nil {
		t.Fatalf("skein user create over SASL: %v: %s", res.Err, res.Stderr)
	}
	res = harness.RunCommand(t, 30*time.Second, nil, harness.Binary(t), "user", "list", "--bootstrap-server", b.ExternalAddr, "--command-config", props)
	listed := false
	for _, line := range strings.Split(res.Stdout, "\n") {
		listed = listed || strings.Join(strings.Fields(line), " ") == "carol SCRAM-SHA-512 4096"
	}
	if res.Err != nil || !listed {
		t.Errorf("skein user list over SASL: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	if err := saslClient(t, c, plain.Auth{User: "carol", Pass: "carol-secret"}.AsMechanism()).Ping(ctx); err != nil {
		t.Errorf("carol, made by the CLI, cannot log in: %v", err)
	}

	for _, m := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		ok, failed := saslAuthCount(t, b, m, "success"), saslAuthCount(t, b, m, "failure")
		if ok == 0 || failed == 0 {
			t.Errorf("%s: %v successes, %v failures counted; want both above zero", m, ok, failed)
		}
	}
}

// consumeValues reads n values with cl (from the start).
func consumeValues(t *testing.T, cl *kgo.Client, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %q", len(got), n, got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

type saramaLogin struct {
	mech       sarama.SASLMechanism
	user, pass string
}

func (l saramaLogin) config() *sarama.Config {
	cfg := saramaConfig("skein-sasl-test", func(cfg *sarama.Config) {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.Mechanism = l.mech
		cfg.Net.SASL.User, cfg.Net.SASL.Password = l.user, l.pass
		cfg.Metadata.Retry.Max = 0
		cfg.Producer.Return.Successes = true
		switch l.mech {
		case sarama.SASLTypeSCRAMSHA256:
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xdgscram.SHA256} }
		case sarama.SASLTypeSCRAMSHA512:
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: xdgscram.SHA512} }
		}
	})
	return cfg
}

// saramaSCRAM is sarama's SCRAM client (sarama leaves it to the
// application) on xdg-go/scram.
type saramaSCRAM struct {
	hash xdgscram.HashGeneratorFcn
	conv *xdgscram.ClientConversation
}

func (s *saramaSCRAM) Begin(user, pass, authz string) error {
	cl, err := s.hash.NewClient(user, pass, authz)
	if err != nil {
		return err
	}
	s.conv = cl.NewConversation()
	return nil
}

func (s *saramaSCRAM) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *saramaSCRAM) Done() bool                            { return s.conv.Done() }

// rawConn is a bare Kafka connection: frames written and read here, so a
// test can send what a client would not (a request before authenticating,
// one after its session expired).
type rawConn struct {
	nc   net.Conn
	br   *bufio.Reader
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawConn{nc: nc, br: bufio.NewReader(nc)}
}

// do sends req at version v and reads the answer into resp.
func (c *rawConn) do(req kmsg.Request, v int16) (kmsg.Response, error) {
	req.SetVersion(v)
	c.corr++
	w := binary.BigEndian.AppendUint32(nil, 0)
	w = binary.BigEndian.AppendUint16(w, uint16(req.Key()))
	w = binary.BigEndian.AppendUint16(w, uint16(v))
	w = binary.BigEndian.AppendUint32(w, uint32(c.corr))
	w = binary.BigEndian.AppendUint16(w, 4)
	w = append(w, "test"...)
	if req.IsFlexible() {
		w = append(w, 0)
	}
	w = req.AppendTo(w)
	binary.BigEndian.PutUint32(w, uint32(len(w)-4))
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(w); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(v)
	skip := 4
	if resp.IsFlexible() && req.Key() != 18 {
		skip = 5
	}
	return resp, resp.ReadFrom(body[skip:])
}

// login runs SaslHandshake v1 and a PLAIN SaslAuthenticate v2.
func (c *rawConn) login(t *testing.T, user, pass string) *kmsg.SASLAuthenticateResponse {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	r, err := c.do(hs, 1)
	if err != nil || r.(*kmsg.SASLHandshakeResponse).ErrorCode != 0 {
		t.Fatalf("handshake: %v %+v", err, r)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SASLAuthBytes = []byte("\x00" + user + "\x00" + pass)
	r, err = c.do(auth, 2)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return r.(*kmsg.SASLAuthenticateResponse)
}

// rawRefused: ApiVersions is served before authentication (it lists
// SaslHandshake v0-v1 and SaslAuthenticate v0-v2), Metadata closes the
// connection.
func rawRefused(t *testing.T, addr string) {
	t.Helper()
	c := dialRaw(t, addr)
	r, err := c.do(kmsg.NewPtrApiVersionsRequest(), 3)
	if err != nil {
		t.Fatalf("ApiVersions before authentication: %v", err)
	}
	var versions []string
	for _, k := range r.(*kmsg.ApiVersionsResponse).ApiKeys {
		if k.ApiKey == 17 || k.ApiKey == 36 {
			versions = append(versions, fmt.Sprintf("%d:%d-%d", k.ApiKey, k.MinVersion, k.MaxVersion))
		}
	}
	if strings.Join(versions, ",") != "17:0-1,36:0-2" {
		t.Errorf("ApiVersions lists SASL versions %v", versions)
	}
	if _, err := c.do(kmsg.NewPtrMetadataRequest(), 12); err == nil {
		t.Error("Metadata before authentication was answered")
	}
	// A failed login is answered, then the connection closes.
	c = dialRaw(t, addr)
	if resp := c.login(t, "admin", "nope"); resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
		t.Errorf("wrong password answered %d", resp.ErrorCode)
	}
	if _, err := c.do(kmsg.NewPtrApiVersionsRequest(), 3); err == nil {
		t.Error("the connection stayed open after a failed login")
	}
}

// TestSASLReauth: with connections.max.reauth.ms at 2 s (KIP-368),
// SaslAuthenticate tells the session lifetime; a franz-go producer keeps
// producing for several lifetimes, re-authenticating on its connections
// (counted by the broker); a raw connection that authenticated and does
// not re-authenticate is closed at its first request after the session
// ended, while one that re-authenticated goes on.
func TestSASLReauth(t *testing.T) {
	const lifetime = 2 * time.Second
	c := saslCluster(t, harness.Options{BrokerArgs: []string{"--connections-max-reauth", lifetime.String()}})
	b := c.Brokers[0]
	const topic = "reauth"
	createTopic(t, c, topic, 1, 1, nil)

	stale := dialRaw(t, b.ExternalAddr)
	if resp := stale.login(t, "admin", "admin-secret"); resp.ErrorCode != 0 || resp.SessionLifetimeMillis != lifetime.Milliseconds() {
		t.Fatalf("login: error %d, session lifetime %d ms; want 0 and %d", resp.ErrorCode, resp.SessionLifetimeMillis, lifetime.Milliseconds())
	}
	fresh := dialRaw(t, b.ExternalAddr)
	fresh.login(t, "admin", "admin-secret")
	if _, err := stale.do(kmsg.NewPtrMetadataRequest(), 12); err != nil {
		t.Fatalf("Metadata within the session: %v", err)
	}

	before := saslAuthCount(t, b, "SCRAM-SHA-512", "success")
	cl := saslClient(t, c, scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism(),
		kgo.DefaultProduceTopic(topic), kgo.RequestRetries(3), kgo.RetryTimeout(10*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	n := 0
	for time.Since(start) < 3*lifetime {
		if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(n))).FirstErr(); err != nil {
			t.Fatalf("produce %d after %v: %v", n, time.Since(start).Round(time.Millisecond), err)
		}
		n++
		if n%50 == 0 { // half way through a session the raw one re-authenticates
			if time.Since(start) > lifetime/2 && fresh != nil {
				if resp := fresh.login(t, "admin", "admin-secret"); resp.ErrorCode != 0 {
					t.Fatalf("re-authentication: %d", resp.ErrorCode)
				}
				fresh = nil
			}
		}
		time.Sleep(5 * time.Millisecond) // pace: a few hundred records over the lifetimes
	}
	logins := saslAuthCount(t, b, "SCRAM-SHA-512", "success") - before
	// One login per connection (metadata, produce) plus a re-authentication
	// about every lifetime minus franz-go's 1 s of pessimism.
	if logins < 4 {
		t.Errorf("%d SCRAM-SHA-512 logins while producing %d records over %v; want re-authentications", int(logins), n, 3*lifetime)
	}
	t.Logf("produced %d records over %v with %d logins", n, time.Since(start).Round(time.Millisecond), int(logins))

	if _, err := stale.do(kmsg.NewPtrMetadataRequest(), 12); err == nil {
		t.Error("a connection whose session expired was served")
	}
	got := consumeValues(t, c.Client(t, kgo.ConsumeTopics(topic)), n)
	if len(got) != n || got[0] != "0" || got[n-1] != fmt.Sprint(n-1) {
		t.Errorf("read %d records (%v ... ), want %d", len(got), first(got, 3), n)
	}
}

// TestSASLReplication: three brokers whose inter-broker listener is
// SASL_PLAINTEXT; followers log in with SCRAM-SHA-512 as the bootstrap user
// broker. A topic of replication factor 3 reaches a full ISR, takes an
// acks=all stream, and its replicas end byte-identical; every leader
// counted the followers' logins.
func TestSASLReplication(t *testing.T) {
	const topic, partitions = "sasl-replicated", 3
	c := saslCluster(t, harness.Options{Brokers: 3, InterBrokerListener: "EXTERNAL",
		BrokerArgs: []string{"--inter-broker-sasl-mechanism", "SCRAM-SHA-512", "--inter-broker-sasl-username", "broker"},
		BrokerEnv:  []string{"SKEIN_INTER_BROKER_SASL_PASSWORD=broker,secret"}})
	createTopic(t, c, topic, partitions, 3, map[string]*string{"min.insync.replicas": strPtr("3")})
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var ledger harness.Ledger
	produceNumbered(t, cl, topic, "sasl", 2000, &ledger)
	checkReplicasIdentical(t, c, topic, partitions, 30*time.Second)
	adm := c.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range topics[topic].Partitions {
		if len(p.ISR) != 3 {
			t.Errorf("partition %d: ISR %v", p.Partition, p.ISR)
		}
	}
	for _, b := range c.Brokers {
		if n := saslAuthCount(t, b, "SCRAM-SHA-512", "success"); n < 2 {
			t.Errorf("%s counted %v SCRAM-SHA-512 logins; want its two followers'", b.Name, n)
		}
	}
	harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks()).Check(t)
}

// TestFranzGoSCRAMSuite runs franz-go's own SCRAM tests (pkg/kgo's
// TestSCRAMAuth and TestSCRAMAuthBadCredentials, from the module cache)
// against a cluster: they read KGO_SEEDS, KGO_TEST_SCRAM (user:pass:bits)
// and KGO_TEST_SCRAM_SEEDS (the SASL listener), for SCRAM-SHA-256 and
// SCRAM-SHA-512. Compiling kgo's tests takes tens of seconds, so it runs
// only with SKEIN_SLOW_TESTS=1 (`make test-slow`).
func TestFranzGoSCRAMSuite(t *testing.T) {
	if os.Getenv("SKEIN_SLOW_TESTS") != "1" {
		t.Skip("slow test: run with SKEIN_SLOW_TESTS=1 (make test-slow)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	c := saslCluster(t, harness.Options{ControllerArgs: []string{"--add-scram", "SCRAM-SHA-256=[name=kgo,password=kgo-secret]"}})
	for _, bits := range []string{"256", "512"} {
		cmd := exec.Command(goBin, "test", "-count=1", "-v", "-run", "^TestSCRAMAuth", "github.com/twmb/franz-go/pkg/kgo")
		user := "kgo:kgo-secret"
		if bits == "512" {
			user = "admin:admin-secret"
		}
		cmd.Env = append(os.Environ(), "KGO_SEEDS="+c.Bootstrap(), "KGO_TEST_SCRAM="+user+":"+bits,
			"KGO_TEST_SCRAM_SEEDS="+strings.Join(external(c), ","))
		out, err := cmd.CombinedOutput()
		t.Logf("franz-go SCRAM-SHA-%s tests:\n%s", bits, out)
		if err != nil {
			t.Errorf("franz-go's SCRAM tests failed with SCRAM-SHA-%s: %v", bits, err)
		}
		if strings.Count(string(out), "--- PASS: TestSCRAMAuth") != 2 {
			t.Errorf("franz-go's two SCRAM tests did not both pass with SCRAM-SHA-%s", bits)
		}
	}
}

// TestSASLEverywhere: three controllers whose Kafka listeners are
// SASL_PLAINTEXT (the voters log in to each other as controller) and two
// brokers that log in to them and to each other (inter-broker listener
// EXTERNAL, SASL_PLAINTEXT) as broker. The brokers register, a topic is
// created through a broker (forwarded over SASL), takes an acks=all stream
// of replication factor 2, and its replicas end identical; the controller
// listener refuses a request before authentication.
func TestSASLEverywhere(t *testing.T) {
	const topic = "sasl-everywhere"
	c := saslCluster(t, harness.Options{Controllers: 3, Brokers: 2, InterBrokerListener: "EXTERNAL",
		ControllerArgs: []string{"--listener-protocol", "SASL_PLAINTEXT", "--controller-sasl-username", "controller",
			"--add-scram", "SCRAM-SHA-256=[name=controller,password=controller-secret]", "--controller-sasl-mechanism", "SCRAM-SHA-256"},
		ControllerEnv: []string{"SKEIN_CONTROLLER_SASL_PASSWORD=controller-secret"},
		BrokerArgs: []string{"--controller-protocol", "SASL_PLAINTEXT",
			"--inter-broker-sasl-username", "broker"},
		BrokerEnv: []string{"SKEIN_INTER_BROKER_SASL_PASSWORD=broker,secret"}})
	for _, ctl := range c.Controllers {
		conn := dialRaw(t, ctl.Addr)
		if _, err := conn.do(kmsg.NewPtrMetadataRequest(), 12); err == nil {
			t.Errorf("controller %s answered Metadata before authentication", ctl.Name)
		}
	}
	createTopic(t, c, topic, 2, 2, nil)
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var ledger harness.Ledger
	produceNumbered(t, cl, topic, "everywhere", 1000, &ledger)
	checkReplicasIdentical(t, c, topic, 2, 30*time.Second)
	harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks()).Check(t)
	// The two follower controllers published their listeners through the
	// active one, logged in as controller. (Logins fail for a moment at
	// start: a broker that dials before the entry creating its user is
	// applied is refused, and retries.)
	var published int
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		published = 0
		for _, n := range c.Controllers {
			if strings.Contains(n.Tail(100000), "published this controller's listener") {
				published++
			}
		}
		return published == 2, fmt.Sprintf("%d follower controllers published their listener", published)
	})
}

// TestSASLPrincipalACLs: the principal a SASL login gives is what the
// authorizer checks. With --authorizer acl and super user admin, alice
// (allowed only to WRITE topic secret) produces but cannot consume, and
// mallory (a user without ACLs on it) can do neither; admin, a super user,
// reads what alice wrote.
func TestSASLPrincipalACLs(t *testing.T) {
	const topic = "secret"
	c := saslCluster(t, harness.Options{BrokerArgs: []string{"--authorizer", "acl", "--super-users", "User:admin",
		"--allow-everyone-if-no-acl-found"}})
	admin := scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism()
	adm := kadm.NewClient(saslClient(t, c, admin))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitForLeaders(t, c, topic, 1)
	for _, u := range []string{"alice", "mallory"} {
		res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: u, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: u + "-secret"}})
		if err == nil {
			err = res[u].Err
		}
		if err != nil {
			t.Fatalf("create %s: %v", u, err)
		}
	}
	acl := kadm.NewACLs().Allow("User:alice").Topics(topic).Operations(kadm.OpWrite)
	if res, err := adm.CreateACLs(ctx, acl); err != nil || res[0].Err != nil {
		t.Fatalf("create ACL: %v %v", err, res)
	}
	login := func(u string) ksasl.Mechanism { return scram.Auth{User: u, Pass: u + "-secret"}.AsSha512Mechanism() }
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		err := saslClient(t, c, login("alice"), kgo.DefaultProduceTopic(topic)).ProduceSync(ctx, kgo.StringRecord("from alice")).FirstErr()
		return err == nil, fmt.Sprintf("alice's produce: %v", err)
	})
	if err := saslClient(t, c, login("mallory")).ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("from mallory")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("mallory's produce: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	for _, u := range []string{"alice", "mallory"} {
		fs := saslClient(t, c, login(u), kgo.ConsumeTopics(topic)).PollFetches(ctx)
		var got error
		fs.EachError(func(_ string, _ int32, err error) { got = err })
		if !errors.Is(got, kerr.TopicAuthorizationFailed) {
			t.Errorf("%s's fetch: %v, want TOPIC_AUTHORIZATION_FAILED", u, got)
		}
	}
	if got := consumeValues(t, saslClient(t, c, admin, kgo.ConsumeTopics(topic)), 1); got[0] != "from alice" {
		t.Errorf("admin read %q", got)
	}
}

// TestSASLSSL: SASL inside TLS. Two brokers whose EXTERNAL listener is
// SASL_SSL, also their inter-broker listener (followers dial TLS, then log
// in). kcat (-X security.protocol=SASL_SSL) is refused with a wrong
// password and produces and consumes with the right one; franz-go logs in
// over TLS; a topic of replication factor 2 takes an acks=all stream and
// its replicas end identical.
func TestSASLSSL(t *testing.T) {
	const topic = "sasl-ssl"
	c := saslCluster(t, harness.Options{Brokers: 2, TLS: &harness.TLSOptions{}, InterBrokerListener: "EXTERNAL",
		BrokerArgs: []string{"--inter-broker-sasl-username", "broker"},
		BrokerEnv:  []string{"SKEIN_INTER_BROKER_SASL_PASSWORD=broker,secret"}})
	createTopic(t, c, topic, 2, 2, nil)
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var ledger harness.Ledger
	produceNumbered(t, cl, topic, "sasl-ssl", 1000, &ledger)
	checkReplicasIdentical(t, c, topic, 2, 30*time.Second)
	harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks()).Check(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fg := c.Client(t, kgo.SeedBrokers(external(c)...), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha256Mechanism()))
	if err := fg.Ping(ctx); err != nil {
		t.Errorf("franz-go over SASL_SSL: %v", err)
	}

	kcat := kcatBinary(t)
	args := func(pass string) []string {
		return []string{"-b", c.Brokers[0].ExternalAddr, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + c.TLS.CAPath,
			"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=admin", "-X", "sasl.password=" + pass, "-m", "10"}
	}
	res := harness.RunCommand(t, 20*time.Second, strings.NewReader("refused\n"), kcat, append(args("nope"), "-P", "-t", topic)...)
	if res.Err == nil || !strings.Contains(res.Stderr, "Authentication failed") {
		t.Errorf("kcat with a wrong password over SASL_SSL: %v %q", res.Err, res.Stderr)
	}
	res = harness.RunCommand(t, 20*time.Second, strings.NewReader("over sasl_ssl\n"), kcat, append(args("admin-secret"), "-P", "-t", topic, "-p", "0")...)
	if res.Err != nil {
		t.Fatalf("kcat produce over SASL_SSL: %v %s", res.Err, res.Stderr)
	}
	res = harness.RunCommand(t, 20*time.Second, nil, kcat, append(args("admin-secret"), "-C", "-t", topic, "-p", "0", "-o", "-1", "-e", "-q")...)
	if res.Err != nil || strings.TrimSpace(res.Stdout) != "over sasl_ssl" {
		t.Errorf("kcat consume over SASL_SSL: %v %q %s", res.Err, res.Stdout, res.Stderr)
	}
}
