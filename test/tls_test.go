package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/skein-io/skein/internal/security"
	"github.com/skein-io/skein/test/harness"
)

// tlsRefusedClient is a franz-go client of c's brokers that gives up fast:
// the tests expect it to be refused.
func tlsRefusedClient(t *testing.T, c *harness.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(strings.Split(c.Bootstrap(), ",")...),
		kgo.RequestRetries(0), kgo.RetryTimeout(2 * time.Second), kgo.DialTimeout(2 * time.Second),
		kgo.RecordDeliveryTimeout(time.Second),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// listTopicsErr is the error of a metadata request through cl.
func listTopicsErr(cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := kadm.NewClient(cl).ListTopics(ctx)
	return err
}

// endOffset is the end offset of partition 0 of topic (-1: no such topic).
func endOffset(t *testing.T, c *harness.Cluster, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := c.Admin(t).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return -1
	}
	return o.Offset
}

// otherCA writes a CA the cluster does not trust, with a client
// certificate it signed, and returns the CA's path and the certificate's.
func otherCA(t *testing.T) (caPath, certPath, keyPath string) {
	t.Helper()
	ca, err := security.NewCA("stranger CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caPath = filepath.Join(dir, "stranger-ca.pem")
	if err := os.WriteFile(caPath, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue(security.CertRequest{Subject: pkix.Name{CommonName: "stranger"}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "stranger.pem"), filepath.Join(dir, "stranger.key")
	if err := issued.WriteFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	return caPath, certPath, keyPath
}

// writeProperties writes a Kafka client properties file.
func writeProperties(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client.properties")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// kcatProduce sends lines with kcat -P using the properties file and
// returns its result.
func kcatProduce(t *testing.T, kcat, bootstrap, props, topic string, lines []string) harness.CLIResult {
	t.Helper()
	return harness.RunCommand(t, time.Minute, strings.NewReader(strings.Join(lines, "\n")+"\n"), kcat,
		"-F", props, "-P", "-b", bootstrap, "-t", topic, "-X", "message.timeout.ms=5000")
}

// TestTLSClients runs one broker and one controller whose only listeners
// speak SSL. Refused first: a plaintext client on the TLS port (nothing
// written) and a client trusting another CA (franz-go and kcat say why);
// then kcat (librdkafka) and franz-go produce and read each other's
// records over TLS, and the skein CLI works with --command-config only.
func TestTLSClients(t *testing.T) {
	kcat := kcatBinary(t)
	c := harness.StartCluster(t, harness.Options{TLS: &harness.TLSOptions{}})
	const topic = "tls-clients"
	createTopic(t, c, topic, 1, 1, nil)
	b := c.Brokers[0]

	// A plaintext client: its bytes are not a TLS handshake; the broker
	// closes the connection without reading a request.
	logAt := b.LogSize()
	plain := tlsRefusedClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := plain.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("plaintext")}).FirstErr()
	cancel()
	if err == nil {
		t.Fatal("a plaintext client produced to the TLS listener")
	}
	t.Logf("plaintext client refused: %v", err)
	if got := endOffset(t, c, topic); got != 0 {
		t.Fatalf("end offset %d after the plaintext client, want 0", got)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(b.LogSince(logAt), "tls handshake failed"), "no 'tls handshake failed' in the broker's log"
	})

	// A client that does not trust the cluster's CA.
	strangerCA, _, _ := otherCA(t)
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(strangerCA)
	pool.AppendCertsFromPEM(pem)
	untrusting := tlsRefusedClient(t, c, kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err := listTopicsErr(untrusting); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("client trusting another CA: err = %v, want a certificate signed by unknown authority", err)
	}
	res := harness.RunCommand(t, 30*time.Second, nil, kcat, "-L", "-b", c.Bootstrap(), "-m", "2",
		"-F", writeProperties(t, "security.protocol=SSL", "ssl.ca.location="+strangerCA))
	if res.Err == nil || !strings.Contains(res.Stderr, "certificate verify failed") {
		t.Fatalf("kcat trusting another CA: err %v, stderr %q; want certificate verify failed", res.Err, res.Stderr)
	}

	// kcat and franz-go over TLS.
	const n = 500
	var lines []string
	for i := range n {
		lines = append(lines, harness.Value("kcat", int64(i)))
	}
	if res := kcatProduce(t, kcat, c.Bootstrap(), c.TLS.ClientProperties, topic, lines); res.Err != nil || strings.Contains(res.Stderr, "ERROR") {
		t.Fatalf("kcat -P over TLS: %v\n%s", res.Err, res.Stderr)
	}
	var ledger harness.Ledger
	produceNumbered(t, c.Client(t, kgo.DefaultProduceTopic(topic)), topic, "franz", n, &ledger)
	res = harness.RunCommand(t, time.Minute, nil, kcat, "-F", c.TLS.ClientProperties, "-C", "-b", c.Bootstrap(),
		"-t", topic, "-o", "beginning", "-e", "-q", "-f", `%p %o %s\n`)
	if res.Err != nil {
		t.Fatalf("kcat -C over TLS: %v\n%s", res.Err, res.Stderr)
	}
	viaKcat, err := parseKcatLines(res.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	report := harness.Verify(viaKcat, ledger.Acks())
	report.Check(t)
	if report.Records != 2*n {
		t.Fatalf("kcat read %d records over TLS, want %d", report.Records, 2*n)
	}
	viaFranz := c.ReadAll(t, topic, time.Minute)
	if len(viaFranz[0]) != 2*n {
		t.Fatalf("franz-go read %d records over TLS, want %d", len(viaFranz[0]), 2*n)
	}

	// The skein CLI: RunCLI adds --command-config; without it the
	// command fails.
	if res := c.RunCLI(t, 30*time.Second, nil, "topic", "list"); res.Err != nil || !strings.Contains(res.Stdout, topic) {
		t.Fatalf("skein topic list --command-config: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	res = harness.RunCommand(t, 30*time.Second, nil, harness.Binary(t), "topic", "list", "--bootstrap-server", c.Bootstrap(), "--timeout", "3s")
	if res.Err == nil {
		t.Fatalf("skein topic list without --command-config succeeded on a TLS listener:\n%s", res.Stdout)
	}
}

// TestTLSMutual requires client certificates signed by the cluster's CA:
// a client without one, with an expired one, or with one another CA
// signed is refused (nothing is written, no topic auto-created); a client
// with a valid one (franz-go, kcat) works, and the broker takes the
// certificate's subject as its principal.
func TestTLSMutual(t *testing.T) {
	kcat := kcatBinary(t)
	// The authorizer shows whom the broker takes a client for: the
	// harness's client and the broker itself are super users by their
	// certificates' subjects.
	c := harness.StartCluster(t, harness.Options{
		TLS: &harness.TLSOptions{Mutual: true},
		BrokerArgs: []string{"--authorizer", "acl",
			"--super-users", "User:CN=harness-client,O=Skein;User:CN=broker-101,O=Skein"},
	})
	const topic = "mtls"
	createTopic(t, c, topic, 1, 1, nil)
	roots := c.TLS.Client.RootCAs
	expired := c.TLS.Issue(t, "expired-client", security.CertRequest{
		Subject:   pkix.Name{CommonName: "expired-client"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
	})
	_, strangerCert, strangerKey := otherCA(t)
	load := func(pair [2]string) []tls.Certificate {
		cert, err := tls.LoadX509KeyPair(pair[0], pair[1])
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{cert}
	}
	for _, bad := range []struct {
		name  string
		certs []tls.Certificate
		want  string
	}{
		{"no client certificate", nil, "certificate required"},
		{"expired client certificate", load(expired), "expired certificate"},
		{"client certificate of another CA", load([2]string{strangerCert, strangerKey}), "unknown certificate authority"},
	} {
		// GetClientCertificate sends the certificate whatever CAs the
		// broker names (Certificates would send none that does not fit).
		certs := bad.certs
		cl := tlsRefusedClient(t, c, kgo.DialTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if len(certs) == 0 {
					return &tls.Certificate{}, nil
				}
				return &certs[0], nil
			}}))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mtls-refused", Value: []byte("x")}).FirstErr()
		cancel()
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("%s: produce err = %v, want %q", bad.name, err, bad.want)
		}
		t.Logf("%s: refused: %v", bad.name, err)
	}
	res := harness.RunCommand(t, 30*time.Second, nil, kcat, "-L", "-b", c.Bootstrap(), "-m", "2",
		"-F", writeProperties(t, "security.protocol=SSL", "ssl.ca.location="+c.TLS.CAPath))
	if res.Err == nil {
		t.Fatalf("kcat without a client certificate listed metadata:\n%s", res.Stdout)
	}
	if !strings.Contains(res.Stderr, "certificate required") {
		t.Fatalf("kcat without a client certificate: stderr %q lacks \"certificate required\"", res.Stderr)
	}
	t.Logf("kcat without a client certificate: %s", strings.TrimSpace(res.Stderr))
	if got := endOffset(t, c, "mtls-refused"); got != -1 {
		t.Fatalf("a refused client's topic exists (end offset %d)", got)
	}

	// Valid certificates: franz-go (the harness's client) and kcat.
	var ledger harness.Ledger
	produceNumbered(t, c.Client(t, kgo.DefaultProduceTopic(topic)), topic, "mtls", 100, &ledger)
	if res := kcatProduce(t, kcat, c.Bootstrap(), c.TLS.ClientProperties, topic, []string{harness.Value("kcat", 0)}); res.Err != nil {
		t.Fatalf("kcat -P with a client certificate: %v\n%s", res.Err, res.Stderr)
	}
	if got := endOffset(t, c, topic); got != 101 {
		t.Fatalf("end offset %d, want 101", got)
	}

	// Another certificate of the CA: its subject is a principal without
	// rights until an ACL names it.
	reader := c.TLS.Issue(t, "reader", security.CertRequest{Subject: pkix.Name{CommonName: "reader", Organization: []string{"Skein"}}})
	readerTLS := c.TLS.Client.Clone()
	readerTLS.Certificates = load(reader)
	readerCl := tlsRefusedClient(t, c, kgo.DialTLSConfig(readerTLS))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := readerCl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("reader")}).FirstErr()
	if err == nil || !strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("User:CN=reader,O=Skein without ACLs: produce err = %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	res = c.RunCLI(t, 30*time.Second, nil, "acl", "create", "--allow-principal", "User:CN=reader,O=Skein",
		"--operation", "Write", "--operation", "Describe", "--topic", topic)
	if res.Err != nil {
		t.Fatalf("skein acl create: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	harness.WaitFor(t, 10*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := tlsRefusedClient(t, c, kgo.DialTLSConfig(readerTLS)).ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("reader")}).FirstErr()
		return err == nil, fmt.Sprintf("User:CN=reader,O=Skein with Write: %v", err)
	})
}

// TestTLSReplication runs 3 controllers (Kafka listeners and Raft over
// TLS) and 3 brokers whose only listener is SSL, all with mutual TLS:
// followers fetch over TLS with their certificates, the ISR fills and the
// replicas are identical.
func TestTLSReplication(t *testing.T) {
	const (
		topic      = "tls-replicated"
		partitions = 3
		records    = 3000
	)
	c := harness.StartCluster(t, harness.Options{Controllers: 3, Brokers: 3, HTTP: true, TLS: &harness.TLSOptions{Mutual: true}})
	createTopic(t, c, topic, partitions, 3, map[string]*string{"min.insync.replicas": strPtr("2")})
	cl := c.Client(t, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var ledger harness.Ledger
	produceNumbered(t, cl, topic, "tls", records, &ledger)

	adm := c.Admin(t)
	harness.WaitFor(t, 30*time.Second, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		topics, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range topics[topic].Partitions {
			if len(p.ISR) != 3 {
				return false, fmt.Sprintf("partition %d ISR %v", p.Partition, p.ISR)
			}
		}
		return true, ""
	})
	res := c.RunCLI(t, time.Minute, nil, "replicas", "verify", topic)
	if res.Err != nil {
		t.Fatalf("skein replicas verify: %v\n%s%s", res.Err, res.Stdout, res.Stderr)
	}
	rows := verifyRows(t, res.Stdout)
	if len(rows) != partitions*3 {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), partitions*3, res.Stdout)
	}
	for _, r := range rows {
		if r[len(r)-1] != "yes" || r[len(r)-3] == "0" {
			t.Errorf("row %q: want bytes > 0 and MATCH yes", strings.Join(r, " "))
		}
	}
	harness.Verify(c.ReadAll(t, topic, time.Minute), ledger.Acks()).Check(t)

	// The web console of a broker and of a controller reaches the cluster
	// over TLS: its overview has the quorum and no error.
	for _, n := range []*harness.Node{c.Brokers[0], c.Controllers[0]} {
		harness.WaitFor(t, 20*time.Second, func() (bool, string) {
			code, body, err := httpGet("http://" + n.HTTPAddr + "/api/overview")
			if err != nil || code != 200 {
				return false, fmt.Sprintf("%s /api/overview: %d %v", n.Name, code, err)
			}
			var o struct {
				Errors []string        `json:"errors"`
				Quorum json.RawMessage `json:"quorum"`
			}
			if err := json.Unmarshal([]byte(body), &o); err != nil {
				return false, err.Error()
			}
			return len(o.Errors) == 0 && len(o.Quorum) > 0 && string(o.Quorum) != "null", fmt.Sprintf("%s console overview: errors %q, quorum %s", n.Name, o.Errors, o.Quorum)
		})
	}

	// The group lag metric: the coordinator asks the other leaders for
	// their end offsets over TLS, with its certificate.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	offsets := kadm.Offsets{}
	for p := range partitions {
		offsets.AddOffset(topic, int32(p), 1, -1)
	}
	if resp, err := adm.CommitOffsets(ctx, "tls-readers", offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit offsets: %v %v", err, resp.Error())
	}
	coord := adm.FindGroupCoordinators(ctx, "tls-readers")
	if err := coord.Error(); err != nil || len(coord) != 1 {
		t.Fatalf("group coordinator: %v %v", coord, err)
	}
	coordinator := c.Broker(coord["tls-readers"].NodeID)
	harness.WaitFor(t, 20*time.Second, func() (bool, string) {
		fams, err := coordinator.Metrics()
		if err != nil {
			return false, err.Error()
		}
		for p := range partitions {
			end, _ := ends.Lookup(topic, int32(p))
			labels := map[string]string{"group": "tls-readers", "topic": topic, "partition": strconv.Itoa(p)}
			if lag, ok := harness.MetricValue(fams, "skein_group_lag", labels); !ok || lag != float64(end.Offset-1) {
				return false, fmt.Sprintf("%s: partition %d lag %v (%v), want %d", coordinator.Name, p, lag, ok, end.Offset-1)
			}
		}
		return true, ""
	})
}

// serverCert dials addr over TLS (trusting the cluster's CA, with its
// client certificate) and returns the certificate the node presents, or
// the handshake's error.
func serverCert(c *harness.Cluster, addr string) (*x509.Certificate, error) {
	cfg := c.TLS.Client.Clone()
	cfg.ServerName = "127.0.0.1"
	d := net.Dialer{Timeout: 3 * time.Second}
	conn, err := tls.DialWithDialer(&d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// apiVersions sends ApiVersions v0 on conn and checks the answer's
// correlation id: the connection still serves requests.
func apiVersions(conn net.Conn, corr int32) error {
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	// size, key 18, version 0, correlation id, client id (null).
	frame := binary.BigEndian.AppendUint32(nil, 10)
	frame = binary.BigEndian.AppendUint16(frame, 18)
	frame = binary.BigEndian.AppendUint16(frame, 0)
	frame = binary.BigEndian.AppendUint32(frame, uint32(corr))
	frame = binary.BigEndian.AppendUint16(frame, 0xffff)
	if _, err := conn.Write(frame); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	return nil
}

// TestTLSCertReload replaces the certificates of a running controller
// (then SIGHUP) and broker (its file watcher notices): new connections get
// the new certificate, connections opened before keep working. A broken
// file is refused and the certificate in use kept; an expired certificate
// loaded this way makes new clients fail with "expired".
func TestTLSCertReload(t *testing.T) {
	c := harness.StartCluster(t, harness.Options{
		TLS: &harness.TLSOptions{},
		// The controller reloads on SIGHUP only (its poll is too slow to
		// matter here), the broker on its poll.
		ControllerArgs: []string{"--tls-reload-interval", "1h"},
		BrokerArgs:     []string{"--tls-reload-interval", "200ms"},
	})
	ctl, b := c.Controllers[0], c.Brokers[0]
	serial := func(addr string) (*big.Int, error) {
		cert, err := serverCert(c, addr)
		if err != nil {
			return nil, err
		}
		return cert.SerialNumber, nil
	}
	reissue := func(n *harness.Node, req security.CertRequest) *security.Issued {
		t.Helper()
		if req.Hosts == nil {
			req.Hosts = []string{"127.0.0.1", "localhost"}
		}
		issued, err := c.TLS.CA.Issue(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := issued.WriteFiles(n.TLSCert, n.TLSKey); err != nil {
			t.Fatal(err)
		}
		return issued
	}
	waitSerial := func(n *harness.Node, want *big.Int) {
		t.Helper()
		harness.WaitFor(t, 15*time.Second, func() (bool, string) {
			got, err := serial(n.Addr)
			if err != nil {
				return false, err.Error()
			}
			return got.Cmp(want) == 0, fmt.Sprintf("%s presents serial %x, want %x", n.Name, got, want)
		})
	}

	// Connections opened before the reloads.
	var old []*tls.Conn
	for _, n := range []*harness.Node{ctl, b} {
		cfg := c.TLS.Client.Clone()
		cfg.ServerName = "127.0.0.1"
		conn, err := tls.Dial("tcp", n.Addr, cfg)
		if err != nil {
			t.Fatalf("dial %s: %v", n.Name, err)
		}
		defer conn.Close()
		old = append(old, conn)
	}
	oldSerials := []*big.Int{old[0].ConnectionState().PeerCertificates[0].SerialNumber, old[1].ConnectionState().PeerCertificates[0].SerialNumber}

	// The controller: new files, then SIGHUP.
	v2 := reissue(ctl, security.CertRequest{Subject: pkix.Name{CommonName: "controller-1-v2"}})
	if got, _ := serial(ctl.Addr); got == nil || got.Cmp(oldSerials[0]) != 0 {
		t.Fatalf("controller presents serial %v before SIGHUP, want the old %x", got, oldSerials[0])
	}
	if err := ctl.Hangup(); err != nil {
		t.Fatal(err)
	}
	waitSerial(ctl, v2.Cert.SerialNumber)

	// The broker: new files only.
	v2 = reissue(b, security.CertRequest{Subject: pkix.Name{CommonName: "broker-101-v2"}})
	waitSerial(b, v2.Cert.SerialNumber)

	// Old connections still serve requests, with their old certificates.
	for i, conn := range old {
		if err := apiVersions(conn, int32(100+i)); err != nil {
			t.Fatalf("connection opened before the reload: %v", err)
		}
		if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(oldSerials[i]) != 0 {
			t.Fatalf("old connection's certificate changed")
		}
	}
	// The cluster still works for a new client (the broker reached the
	// controller with its new certificate and vice versa).
	createTopic(t, c, "after-reload", 1, 1, nil)
	var ledger harness.Ledger
	produceNumbered(t, c.Client(t, kgo.DefaultProduceTopic("after-reload")), "after-reload", "reload", 10, &ledger)

	// A broken certificate file: refused, the certificate in use kept.
	logAt := b.LogSize()
	if err := security.WriteFileAtomic(b.TLSCert, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 15*time.Second, func() (bool, string) {
		return strings.Contains(b.LogSince(logAt), "tls reload failed"), "no 'tls reload failed' in the broker's log"
	})
	if got, err := serial(b.Addr); err != nil || got.Cmp(v2.Cert.SerialNumber) != 0 {
		t.Fatalf("after a broken file the broker presents %v (%v), want the kept %x", got, err, v2.Cert.SerialNumber)
	}

	// An expired certificate: new clients refuse the broker.
	reissue(b, security.CertRequest{Subject: pkix.Name{CommonName: "broker-101-expired"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	harness.WaitFor(t, 15*time.Second, func() (bool, string) {
		_, err := serverCert(c, b.Addr)
		return err != nil && strings.Contains(err.Error(), "expired"), fmt.Sprintf("dial error %v, want an expired certificate", err)
	})
	if err := listTopicsErr(tlsRefusedClient(t, c, kgo.DialTLSConfig(c.TLS.Client))); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("franz-go against an expired certificate: err = %v, want expired", err)
	}
	if err := apiVersions(old[1], 200); err != nil {
		t.Fatalf("connection opened before the reloads: %v", err)
	}
}
