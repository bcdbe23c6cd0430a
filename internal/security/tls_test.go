package security

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseClientProperties(t *testing.T) {
	cfg, err := ParseClientProperties([]byte(`
# kcat -F and --command-config
security.protocol = ssl
ssl.ca.location=/etc/ca.pem
! a Java-style comment
ssl.certificate.location: /etc/client.pem
ssl.key.location=/etc/client.key
ssl.endpoint.identification.algorithm=
sasl.mechanism=SCRAM-SHA-512
sasl.username=alice
sasl.password=pa=ss
client.id=tool
`))
	if err != nil {
		t.Fatal(err)
	}
	want := ClientConfig{
		Protocol: SSL, CALocation: "/etc/ca.pem", CertLocation: "/etc/client.pem", KeyLocation: "/etc/client.key",
		EndpointIdentification: "none", SASLMechanism: "SCRAM-SHA-512", SASLUsername: "alice", SASLPassword: "pa=ss",
		Unknown: []string{"client.id"},
	}
	if cfg.Protocol != want.Protocol || cfg.CALocation != want.CALocation || cfg.CertLocation != want.CertLocation ||
		cfg.KeyLocation != want.KeyLocation || cfg.EndpointIdentification != want.EndpointIdentification ||
		cfg.SASLMechanism != want.SASLMechanism || cfg.SASLUsername != want.SASLUsername || cfg.SASLPassword != want.SASLPassword ||
		strings.Join(cfg.Unknown, ",") != "client.id" {
		t.Fatalf("parsed %+v, want %+v", cfg, want)
	}
	for _, bad := range []string{
		"security.protocol=TLS",
		"=value",
		"just a line",
		"ssl.certificate.location=/a.pem",
		"sasl.mechanism=GSSAPI",
		"security.protocol=SASL_SSL",
		"ssl.key.password=secret",
		"ssl.endpoint.identification.algorithm=dns",
	} {
		if _, err := ParseClientProperties([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if c, err := ParseClientProperties(nil); err != nil || c.ProtocolOrDefault() != Plaintext {
		t.Fatalf("empty file: %+v, %v", c, err)
	}
	if tc, err := (ClientConfig{}).TLSConfig(); err != nil || tc != nil {
		t.Fatalf("PLAINTEXT has a TLS config: %v %v", tc, err)
	}
}

// testMaterial writes a CA and a node certificate for 127.0.0.1 into a
// temporary directory and returns the CA and the files.
func testMaterial(t *testing.T, mutual bool) (*CA, TLSFiles) {
	t.Helper()
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := TLSFiles{Cert: filepath.Join(dir, "node.pem"), Key: filepath.Join(dir, "node.key"), CA: filepath.Join(dir, "ca.pem")}
	if mutual {
		files.ClientCA = files.CA
	}
	if err := os.WriteFile(files.CA, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	issue(t, ca, files, "node-v1")
	return ca, files
}

func issue(t *testing.T, ca *CA, files TLSFiles, cn string) *Issued {
	t.Helper()
	issued, err := ca.Issue(CertRequest{Subject: pkix.Name{CommonName: cn, Organization: []string{"Skein"}}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := issued.WriteFiles(files.Cert, files.Key); err != nil {
		t.Fatal(err)
	}
	return issued
}

// serve accepts TLS connections with material's server config, and
// reports each handshake's principal.
func serve(t *testing.T, material *TLS) (string, <-chan string) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", material.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	principals := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					principals <- "refused"
					return
				}
				principals <- PeerPrincipal(tc.ConnectionState())
				_, _ = tc.Write([]byte{1})
			}()
		}
	}()
	return ln.Addr().String(), principals
}

// TestMutualTLSPrincipalAndReload: a node's client config (its own
// certificate) is accepted by a mutual-TLS server and named by its
// subject; a client without a certificate is refused; a reload serves the
// new certificate to new handshakes, and a failed one keeps the old.
func TestMutualTLSPrincipalAndReload(t *testing.T) {
	ca, files := testMaterial(t, true)
	material, err := LoadTLS(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, principals := serve(t, material)
	dial := func(cfg *tls.Config) (*tls.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := DialTLS(context.Background(), &d, addr, cfg)
		if err != nil {
			return nil, err
		}
		var b [1]byte
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(b[:]); err != nil {
			c.Close()
			return nil, err
		}
		return c.(*tls.Conn), nil
	}
	c, err := dial(material.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if p := <-principals; p != "User:CN=node-v1,O=Skein" {
		t.Fatalf("principal %q", p)
	}
	anon := material.ClientConfig()
	anon.GetClientCertificate = nil
	if _, err := dial(anon); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if p := <-principals; p != "refused" {
		t.Fatalf("got %q, want refused", p)
	}

	v2 := issue(t, ca, files, "node-v2")
	if err := material.Reload("test"); err != nil {
		t.Fatal(err)
	}
	c, err = dial(material.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(v2.Cert.SerialNumber) != 0 {
		t.Fatalf("serial %x after reload, want %x", got, v2.Cert.SerialNumber)
	}
	c.Close()
	if p := <-principals; p != "User:CN=node-v2,O=Skein" {
		t.Fatalf("principal %q after reload", p)
	}

	if err := os.WriteFile(files.Key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := material.Reload("test"); err == nil {
		t.Fatal("a broken key reloaded")
	}
	if leaf := material.Leaf(); leaf.SerialNumber.Cmp(v2.Cert.SerialNumber) != 0 {
		t.Fatal("a failed reload replaced the certificate")
	}
}

// TestWatchReloads: the watcher notices new files.
func TestWatchReloads(t *testing.T) {
	ca, files := testMaterial(t, false)
	material, err := LoadTLS(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go material.Watch(ctx, 10*time.Millisecond)
	v2 := issue(t, ca, files, "node-v2")
	deadline := time.Now().Add(10 * time.Second)
	for material.Leaf().SerialNumber.Cmp(v2.Cert.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not reload the new certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDialChecksServerName: a node dialing a peer by IP address refuses a
// certificate its CA signed for another address. (Verifying in
// VerifyConnection with the connection's server name, empty for an IP
// since no SNI is sent, accepted it.)
func TestDialChecksServerName(t *testing.T) {
	ca, files := testMaterial(t, false)
	server, err := LoadTLS(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := serve(t, server)
	if c, err := server.Dial()(context.Background(), "tcp", addr); err != nil {
		t.Fatalf("dial a certificate for 127.0.0.1: %v", err)
	} else {
		c.Close()
	}
	issued, err := ca.Issue(CertRequest{Subject: pkix.Name{CommonName: "elsewhere"}, Hosts: []string{"10.9.9.9", "elsewhere.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := issued.WriteFiles(files.Cert, files.Key); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload("test"); err != nil {
		t.Fatal(err)
	}
	c, err := server.Dial()(context.Background(), "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("a certificate for 10.9.9.9 was accepted at 127.0.0.1")
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("error %v does not name the address", err)
	}
}
